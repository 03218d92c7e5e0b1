"""Training: bit-exact resume on CPU, logs, samples, exported model, data from a folder, errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from safetensors.torch import load_file

from panbench.cli import main
from panbench.errors import ConfigError, DataError
from reference_model.model import PanModel
from reference_model.recipes import train
from reference_model.train import LOG_COLUMNS
from tests.reference_model.helpers import write_run_config


def _tensors(folder: Path) -> dict:
    return {
        "model": load_file(str(folder / "checkpoint" / "model.safetensors")),
        "ema": load_file(str(folder / "checkpoint" / "ema.safetensors")),
        "export": load_file(str(folder / "model" / "model.safetensors")),
    }


def _assert_identical(a: dict, b: dict) -> None:
    for part in a:
        assert a[part].keys() == b[part].keys()
        for key in a[part]:
            assert a[part][key].equal(b[part][key]), f"{part}:{key} differs"


@pytest.mark.parametrize("split", [2, 3])  # at the stage boundary, and inside stage 2
def test_resume_is_bit_exact(tmp_path: Path, split: int) -> None:
    config = write_run_config(tmp_path / "run.yaml", ae_steps=2, steps=3)
    train(config, tmp_path / "straight")
    train(config, tmp_path / "split", max_steps=split)
    state = json.loads((tmp_path / "split" / "checkpoint" / "state.json").read_text())
    assert state["step"] == split
    train(config, tmp_path / "split", resume=True)
    _assert_identical(_tensors(tmp_path / "straight"), _tensors(tmp_path / "split"))
    rows = list(csv.DictReader((tmp_path / "split" / "log.csv").read_text().splitlines()))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5]  # no duplicated rows after resume


def test_seeds_change_the_run(tmp_path: Path) -> None:
    a = write_run_config(tmp_path / "a.yaml", ae_steps=1, steps=1)
    train(a, tmp_path / "a")
    text = (tmp_path / "a.yaml").read_text().replace("seed: 3", "seed: 4")
    (tmp_path / "b.yaml").write_text(text)
    train(tmp_path / "b.yaml", tmp_path / "b")
    ta, tb = _tensors(tmp_path / "a")["model"], _tensors(tmp_path / "b")["model"]
    assert any(not ta[k].equal(tb[k]) for k in ta)


def test_outputs_logs_samples_and_export(tmp_path: Path) -> None:
    config = write_run_config(tmp_path / "run.yaml", ae_steps=1, steps=3)
    code = main(["train", "--config", str(config), "--out", str(tmp_path / "run")])
    assert code == 0
    run = tmp_path / "run"
    rows = list(csv.DictReader((run / "log.csv").read_text().splitlines()))
    assert tuple(rows[0]) == LOG_COLUMNS
    assert rows[0]["stage"] == "autoencoder" and rows[0]["recon"] and not rows[0]["collapse"]
    assert rows[-1]["stage"] == "dynamics" and float(rows[-1]["collapse"]) >= 0.0
    assert (run / "samples" / "step-0000003.png").read_bytes()[:4] == b"\x89PNG"
    doc = json.loads((run / "model" / "config.json").read_text())
    assert doc["training"]["command"].startswith("panbench train --config ")
    assert doc["training"]["step"] == 4
    model = PanModel.from_pretrained(run / "model")
    # the encoder's latent statistics were measured at the end of stage 1
    assert not model.encoder.latent_std.eq(1.0).all()
    assert not any(p.name.endswith(".tmp") for p in run.iterdir())


def test_train_from_a_generated_folder(tmp_path: Path) -> None:
    from panbench.data import generate_episodes

    generate_episodes("shapes", episodes=3, length=5, seed=0, out=tmp_path / "data", resolution=32)
    config = write_run_config(
        tmp_path / "run.yaml", ae_steps=1, steps=1, source="folder", path=str(tmp_path / "data")
    )
    train(config, tmp_path / "run")
    assert (tmp_path / "run" / "model" / "model.safetensors").is_file()


def test_refuses_to_clobber_or_resume_nothing(tmp_path: Path) -> None:
    config = write_run_config(tmp_path / "run.yaml", ae_steps=1, steps=0)
    with pytest.raises(DataError, match="no checkpoint"):
        train(config, tmp_path / "run", resume=True)
    train(config, tmp_path / "run")
    with pytest.raises(ConfigError, match="--resume"):
        train(config, tmp_path / "run")


def test_init_encoder_reuses_a_trained_h(tmp_path: Path) -> None:
    first = write_run_config(tmp_path / "a.yaml", ae_steps=2, steps=0)
    train(first, tmp_path / "a")
    second = write_run_config(tmp_path / "b.yaml", ae_steps=0, steps=2)
    text = second.read_text().replace(
        "  seed: 3\n", f"  seed: 3\n  init_encoder: {tmp_path / 'a' / 'model'}\n"
    )
    second.write_text(text)
    train(second, tmp_path / "b")
    a = PanModel.from_pretrained(tmp_path / "a" / "model").encoder.state_dict()
    b = PanModel.from_pretrained(tmp_path / "b" / "model").encoder.state_dict()
    assert all(a[k].equal(b[k]) for k in a)
    bad = second.read_text().replace("ae_steps: 0", "ae_steps: 1")
    (tmp_path / "c.yaml").write_text(bad)
    with pytest.raises(ConfigError, match="ae_steps must be 0"):
        train(tmp_path / "c.yaml", tmp_path / "c")


def test_joint_encoder_trains_h_in_stage_two_and_resumes_bit_exactly(tmp_path: Path) -> None:
    first = write_run_config(tmp_path / "a.yaml", ae_steps=2, steps=0)
    train(first, tmp_path / "a")
    start = PanModel.from_pretrained(tmp_path / "a" / "model").encoder.state_dict()
    config = write_run_config(tmp_path / "b.yaml", ae_steps=0, steps=3)
    text = config.read_text().replace(
        "  seed: 3\n",
        f"  seed: 3\n  init_encoder: {tmp_path / 'a' / 'model'}\n  joint_encoder: true\n",
    )
    config.write_text(text)
    train(config, tmp_path / "straight")
    train(config, tmp_path / "split", max_steps=1)
    train(config, tmp_path / "split", resume=True)
    _assert_identical(_tensors(tmp_path / "straight"), _tensors(tmp_path / "split"))
    ema = _tensors(tmp_path / "straight")["ema"]
    moved = [k for k in start if f"encoder.{k}" in ema and not ema[f"encoder.{k}"].equal(start[k])]
    assert moved, "h did not train in stage 2"
    assert any(k.startswith("vae.encoder.") for k in moved)  # through the losses on latents
    assert any(k.startswith("vae.decoder.") for k in moved)  # through reconstruction
    end = PanModel.from_pretrained(tmp_path / "straight" / "model").encoder
    assert end.latent_std.equal(start["latent_std"])  # the statistics stay those measured
    rows = list(csv.DictReader((tmp_path / "straight" / "log.csv").read_text().splitlines()))
    assert all(float(r["encoder_var"]) > 0 and float(r["recon"]) > 0 for r in rows)


@pytest.mark.slow
def test_ddp_under_torchrun_on_cpu(tmp_path: Path) -> None:
    import os
    import shutil
    import subprocess
    import sys

    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    if torchrun is None:
        pytest.skip("torchrun not installed next to this Python")
    config = write_run_config(tmp_path / "run.yaml", ae_steps=2, steps=2)
    out = tmp_path / "run"
    cmd = [torchrun, "--nproc_per_node", "2", "-m", "panbench.cli", "train"]
    cmd += ["--config", str(config), "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = list(csv.DictReader((out / "log.csv").read_text().splitlines()))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]  # rank 0 alone writes
    PanModel.from_pretrained(out / "model")
