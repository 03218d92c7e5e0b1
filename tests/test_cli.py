"""The `panbench` command: version, listings, error reporting and exit codes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from panbench import __version__
from panbench.cli import main, parse_kv
from panbench.errors import ConfigError


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"panbench {__version__}"


def test_console_script_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "panbench.cli", "ls", "envs"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    for name in ("shapes", "bounce", "maze", "blocks"):
        assert name in out.stdout


@pytest.mark.parametrize(
    ("what", "expected"),
    [
        ("envs", ["shapes", "bounce", "maze", "blocks"]),
        ("models", ["oracle", "copy-last", "random-action"]),
        ("tasks", ["agent-sim", "env-sim", "long-horizon", "stepwise-sim", "counterfactual"]),
        ("suites", ["quick", "pan-core"]),
        ("metrics", ["psnr", "ssim", "lpips", "action_following", "choice_accuracy"]),
        ("protocols", ["rollout", "choice", "counterfactual"]),
    ],
)
def test_ls(what: str, expected: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ls", what]) == 0
    out = capsys.readouterr().out
    for name in expected:
        assert name in out


def test_unknown_env_is_a_clear_error(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    code = main(
        [
            "data",
            "generate",
            "--env",
            "shape",
            "--episodes",
            "1",
            "--length",
            "2",
            "--out",
            str(tmp_path / "d"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "Unknown env 'shape'" in err and "Did you mean: shapes?" in err
    assert not (tmp_path / "d").exists()


def test_unknown_model_is_a_clear_error(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    code = main(["evaluate", "--model", "orcale", "--suite", "quick", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "Unknown model 'orcale'" in err and "oracle" in err
    assert not (tmp_path / "r" / "results.json").exists()


def test_parse_kv() -> None:
    assert parse_kv("a=1, b=true,c=x,d=0.5") == {"a": 1, "b": True, "c": "x", "d": 0.5}
    assert parse_kv("") == {}
    with pytest.raises(ConfigError, match="key=value"):
        parse_kv("novalue")


def test_parse_kv_values_with_commas() -> None:
    # quoted, escaped, or as a mapping: a prompt may hold a comma
    want = {"prompt": "move left, then up", "steps": 4}
    assert parse_kv('prompt="move left, then up",steps=4') == want
    assert parse_kv("prompt='move left, then up', steps=4") == want
    assert parse_kv("prompt=move left\\, then up,steps=4") == want
    assert parse_kv('{prompt: "move left, then up", steps: 4}') == want
    assert parse_kv('{"prompt": "move left, then up", "steps": 4}') == want
    # an apostrophe inside a value does not open a quote
    assert parse_kv("path=runs/it's,seed=1") == {"path": "runs/it's", "seed": 1}
    assert parse_kv("base_url=http://127.0.0.1:8000/v1,model=Qwen/Qwen2.5-VL-7B") == {
        "base_url": "http://127.0.0.1:8000/v1",
        "model": "Qwen/Qwen2.5-VL-7B",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a=1,a=2", "given twice"),
        ('prompt="unterminated, steps=4', "prompt"),
        ("{a: 1", "mapping"),
        ("{1: a}", "string keys"),
        ("[1, 2]", "key=value"),
    ],
)
def test_parse_kv_refuses_bad_options(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_kv(text)
