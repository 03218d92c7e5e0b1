"""Board task pages with rollouts and provenance; rollouts as animated WebP; the run report."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from panbench.cli import main
from panbench.data.videos import read_video, write_video
from panbench.leaderboard import build_leaderboard, init_leaderboard, submit
from panbench.pages import ROLLOUTS_PER_TASK, rollout_webp, write_report
from tests.leaderboard_runs import copy_run, mini_run, suite_path


def _frames(seed: int, n: int = 6) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frames = np.zeros((n, 32, 64, 3), dtype=np.uint8)
    for t in range(n):  # a square that moves: what a rollout shows
        frames[t, 8:16, 4 * t : 4 * t + 8] = rng.integers(60, 255, 3)
    return frames


def _with_videos(
    model: str, dst: Path, tasks: tuple[str, ...] = ("mini-agent", "mini-long")
) -> Path:
    run = copy_run(mini_run(model), dst)
    for k, task in enumerate(tasks):
        (run / "videos" / task).mkdir(parents=True)
        for i in range(3):  # one more than a board keeps
            write_video(run / "videos" / task / f"{i:05d}.mp4", _frames(10 * k + i))
    return run


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.src: list[str] = []
        self.href: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "img":
            self.src.append(str(a["src"]))
        if tag == "a":
            self.href.append(str(a["href"]))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(page: Path) -> _Links:
    links = _Links()
    links.feed(page.read_text(encoding="utf-8"))
    return links


def test_a_rollout_becomes_a_looping_lossless_webp(tmp_path: Path) -> None:
    from PIL import Image, ImageSequence

    video = tmp_path / "v.mp4"
    write_video(video, _frames(1))
    out = rollout_webp(video, tmp_path / "v.webp")
    decoded = read_video(video)
    with Image.open(out) as img:
        assert img.format == "WEBP" and img.info.get("loop") == 0
        frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(img)]
    assert len(frames) == len(decoded)
    np.testing.assert_array_equal(np.stack(frames), decoded)


def test_rollout_of_a_broken_video_names_the_file(tmp_path: Path) -> None:
    from panbench.errors import DataError

    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(DataError, match=r"bad\.mp4"):
        rollout_webp(bad, tmp_path / "bad.webp")


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("pages")
    root = tmp / "board"
    init_leaderboard(root, suite_path(1))
    submit(_with_videos("oracle", tmp / "oracle"), root)
    submit(_with_videos("copy-last", tmp / "copy-last", ("mini-agent",)), root)
    submit(mini_run("random-action"), root)  # no videos
    build_leaderboard(root)
    return root


def test_submit_keeps_the_first_rollouts_per_task(board: Path) -> None:
    media = board / "media"
    assert sorted(p.name for p in (media / "oracle" / "mini-agent").iterdir()) == [
        f"{i:05d}.webp" for i in range(ROLLOUTS_PER_TASK)
    ]
    assert not (media / "copy-last" / "mini-long").exists()
    assert not (media / "random-action").exists()
    total = sum(f.stat().st_size for f in media.rglob("*.webp"))
    assert total < 200_000  # 6 rollouts; a 10-model board stays within a few MB


def test_every_task_has_a_page_with_rollouts_curves_and_provenance(board: Path) -> None:
    index = _parse(board / "index.html")
    tasks = ["mini-agent", "mini-long", "mini-choice", "mini-plan"]
    assert [h for h in index.href if h.startswith("tasks/")] == [f"tasks/{t}.html" for t in tasks]
    page = board / "tasks" / "mini-agent.html"
    links = _parse(page)
    for src in links.src:
        assert (page.parent / src).resolve().is_file(), src
    rollouts = [s for s in links.src if s.endswith(".webp")]
    assert len(rollouts) == 2 * ROLLOUTS_PER_TASK  # oracle's and copy-last's
    assert any(s.endswith("drift-mini-agent.svg") for s in links.src)
    text = " ".join(" ".join(links.text).split())
    # Every submission, best suite score first, with its provenance.
    order = [m for m in re.findall(r"\d\. (oracle|copy-last|random-action)", text)]
    assert order[0] == "oracle" and sorted(order) == ["copy-last", "oracle", "random-action"]
    assert text.count("checkpoint sha256") == 3 and "panbench" in text
    assert "No rollouts: run with --save-videos K" in text  # random-action's section


def test_report_renders_one_run(tmp_path: Path) -> None:
    run = _with_videos("copy-last", tmp_path / "run")
    page = write_report(run)
    assert page == run / "report" / "index.html"
    links = _parse(page)
    for src in links.src:
        assert (page.parent / src).is_file(), src
    assert sum(s.endswith(".webp") for s in links.src) == 2 * ROLLOUTS_PER_TASK
    text = " ".join(links.text)
    flat = " ".join(text.split())
    assert flat.count("predicted | true") == 2 * ROLLOUTS_PER_TASK
    from panbench.results import load_results

    results = load_results(run)
    entry = results.tasks["mini-agent"].metrics["psnr"]
    assert f"{entry.value:.3f}" in text
    assert f"[{entry.ci95[0]:.3f}, {entry.ci95[1]:.3f}]" in text
    # The order of the other figures and pages (the suite's, when panbench knows the suite).
    from panbench.plots import suite_task_order

    order = suite_task_order(results)
    at = [text.index(f"\n {t} ") if f"\n {t} " in text else text.index(t) for t in order]
    assert at == sorted(at)


def test_report_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(mini_run("oracle")), "--out", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r" / "index.html").is_file()
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "expected results.json" in err and "Traceback" not in err
