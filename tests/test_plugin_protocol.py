"""A protocol registered ONLY through an entry point validates and runs like a built-in one."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from panbench.protocols import PROTOCOLS

PLUGIN = '''\
"""A tiny third-party protocol: one model step, scored by PSNR against the true frame."""

from typing import ClassVar

from panbench.metrics.frame import psnr_video
from panbench.protocols import Option, Protocol
from panbench.records import SampleRecord


class OneStepProtocol(Protocol):
    """One step from the context under the true first action; PSNR of the prediction."""

    name: ClassVar[str] = "one-step"
    sources: ClassVar[tuple[str, ...]] = ("env",)
    metrics: ClassVar[tuple[str, ...]] = ("psnr",)
    options: ClassVar[tuple[Option, ...]] = (Option("scale", float, 1.0, "multiplies PSNR"),)

    def run_batch(self, runner, episodes):
        state = runner.reset(episodes)
        _, frames = runner.step(state, [e.actions[0] for e in episodes], where="one step")
        out = []
        for i, e in enumerate(episodes):
            psnr = float(psnr_video(frames[i][None, None], e.frames[:1][None])[0, 0])
            out.append(SampleRecord(metrics={"psnr": psnr * self.opts["scale"]}))
        return out
'''

TASK = """\
task: plugin-task
version: 1
protocol: one-step
env: {name: shapes, resolution: 32}
episodes: {count: 4, seed: 3, context: 2, horizon: 2, policy: agent}
metrics: [psnr]
headline: psnr
options: {scale: 1}
"""


@pytest.fixture()
def installed_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Installs a plugin distribution (package + dist-info with an entry point) on sys.path."""
    site = tmp_path / "site"
    (site / "panbench_one_step").mkdir(parents=True)
    (site / "panbench_one_step" / "__init__.py").write_text(PLUGIN)
    dist = site / "panbench_one_step-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: panbench-one-step\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[panbench.protocols]\none-step = panbench_one_step:OneStepProtocol\n"
    )
    monkeypatch.syspath_prepend(str(site))
    # A fresh look at the entry points, and the registry restored afterwards.
    monkeypatch.setattr(PROTOCOLS, "_entries", dict(PROTOCOLS._entries))
    monkeypatch.setattr(PROTOCOLS, "_entry_points_loaded", False)
    yield tmp_path
    sys.modules.pop("panbench_one_step", None)


def test_entry_point_protocol_is_registered_and_declared(installed_plugin: Path) -> None:
    assert "one-step" in PROTOCOLS.names()
    cls = PROTOCOLS.get("one-step")
    assert cls.metrics == ("psnr",) and cls.sources == ("env",)


def test_entry_point_protocol_validates_with_its_declarations(installed_plugin: Path) -> None:
    from panbench.suite import check_path

    good = installed_plugin / "plugin-task.yaml"
    good.write_text(TASK)
    report = check_path(good)
    assert report.problems == [] and [t.protocol for t in report.tasks] == ["one-step"]
    bad = installed_plugin / "bad" / "plugin-task.yaml"
    bad.parent.mkdir()
    bad.write_text(TASK.replace("{scale: 1}", "{scale: big}").replace("[psnr]", "[psnr, ssim]"))
    messages = [str(p) for p in check_path(bad).problems]
    assert any(":6: expected a metric protocol 'one-step' reports (psnr)" in m for m in messages)
    assert any(":8: expected scale to be a number, but got 'big'" in m for m in messages)


def test_entry_point_protocol_runs_in_evaluate(installed_plugin: Path) -> None:
    from panbench.harness import evaluate

    task = installed_plugin / "plugin-task.yaml"
    task.write_text(TASK)
    out = installed_plugin / "run"
    results = evaluate("copy-last", out=out, tasks=[str(task)], limit=2, progress=False)
    entry = results["tasks"]["plugin-task"]
    assert entry["n_episodes"] == 2 and entry["protocol"] == "one-step"
    assert entry["metrics"]["psnr"]["higher_is_better"] is True
    lines = (out / "samples" / "plugin-task.jsonl").read_text().splitlines()
    assert len(lines) == 2 and all("psnr" in json.loads(x)["metrics"] for x in lines)


def test_cli_lists_the_plugin_protocol(
    installed_plugin: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from panbench.cli import main

    assert main(["ls", "protocols"]) == 0
    assert "one-step" in capsys.readouterr().out
