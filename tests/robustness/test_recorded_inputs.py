"""Dataset-backed tasks whose data changed, vanished or was tampered with after the import."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from panbench.cli import main
from tests.robustness.refusal import assert_refused

pytest.importorskip("av")


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.data.recorded_fake import make_videos

    root = tmp_path_factory.mktemp("recorded")
    src = make_videos(root / "src", lengths=(13, 13))
    argv = ["tasks", "import", "videos", "--root", str(src), "--out", str(root / "tasks")]
    assert main([*argv, "--test-fraction", "1", "--resolution", "32", "--name", "rec"]) == 0
    return root


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _edit_manifest(folder: Path) -> None:
    path = folder / "tasks" / "rec.manifest.json"
    data = json.loads(path.read_text())
    data["windows" if "windows" in data else next(iter(data))] = []
    path.write_text(json.dumps(data))


def _root_elsewhere(folder: Path) -> None:
    task = folder / "tasks" / "rec.yaml"
    task.write_text(task.read_text().replace(str(folder / "src"), str(folder / "gone")))


#: (id, damage to the copied import, expected fragments)
DAMAGE: list[tuple[str, Callable[[Path], None], list[str]]] = [
    ("video-changed", lambda f: _flip_byte(f / "src" / "clip0.mp4"), ["clip0.mp4", "changed"]),
    ("video-deleted", lambda f: (f / "src" / "clip1.mp4").unlink(), ["clip1.mp4"]),
    ("actions-changed", lambda f: _flip_byte(f / "src" / "clip0.actions.json"), ["clip0.actions"]),
    ("manifest-edited", _edit_manifest, ["rec.manifest.json", "changed after import"]),
    ("manifest-deleted", lambda f: (f / "tasks" / "rec.manifest.json").unlink(), ["manifest"]),
    ("data-root-missing", _root_elsewhere, ["gone"]),
]


@pytest.mark.parametrize(("damage", "expected"), [pytest.param(d, e, id=i) for i, d, e in DAMAGE])
def test_changed_recorded_data_is_refused(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    imported: Path,
    damage: Callable[[Path], None],
    expected: list[str],
) -> None:
    folder = Path(shutil.copytree(imported, tmp_path / "copy"))
    task = folder / "tasks" / "rec.yaml"
    task.write_text(task.read_text().replace(str(imported / "src"), str(folder / "src")))
    damage(folder)
    out = tmp_path / "run"
    argv = ["evaluate", "--model", "copy-last", "--tasks", str(task), "--out", str(out)]
    assert_refused(capsys, [*argv, "--no-progress"], expected, out=out)
