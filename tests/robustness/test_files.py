"""Bad files panbench reads: checkpoints, pinned weights, episode folders and videos."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from panbench import weights
from tests.models.runs import small_tasks
from tests.robustness.refusal import assert_refused

MARKER = "code-ran-from-data"


class Planted:
    """Unpickling this writes a marker file: proof that loading a file ran code."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.write_text, (Path(self.path), "pwned"))


def planted_pickle(folder: Path) -> bytes:
    return pickle.dumps({"weight": Planted(folder / MARKER)})


# ============================================================================ checkpoints
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("diffusers")
    from tests.reference_model.helpers import tiny_model

    path = tmp_path_factory.mktemp("pan-ref") / "ckpt"
    tiny_model(seed=1).save_pretrained(path, training={"command": "test"})
    return path


def _retype(ckpt: Path) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(ckpt / "model.safetensors"))
    key = next(k for k, t in tensors.items() if t.dtype.is_floating_point)
    tensors[key] = tensors[key].to(__import__("torch").int64)
    save_file(tensors, str(ckpt / "model.safetensors"))


def _reshape(ckpt: Path) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(ckpt / "model.safetensors"))
    key = next(k for k, t in tensors.items() if t.ndim == 2)
    tensors[key] = tensors[key][:, :1].contiguous()
    save_file(tensors, str(ckpt / "model.safetensors"))


def _config(edit: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def apply(ckpt: Path) -> None:
        data = json.loads((ckpt / "config.json").read_text())
        edit(data)
        (ckpt / "config.json").write_text(json.dumps(data))

    return apply


def _truncate(ckpt: Path) -> None:
    weights_file = ckpt / "model.safetensors"
    weights_file.write_bytes(weights_file.read_bytes()[:200])


#: (id, damage, expected fragments)
CHECKPOINTS: list[tuple[str, Callable[[Path], None], list[str]]] = [
    ("wrong-shape", _reshape, ["does not match", "has shape", "config builds"]),
    ("wrong-dtype", _retype, ["has dtype torch.int64", "config builds torch.float32"]),
    ("truncated", _truncate, ["model.safetensors", "not a readable safetensors file"]),
    ("empty-weights", lambda c: (c / "model.safetensors").write_bytes(b""), ["safetensors"]),
    ("no-weights", lambda c: (c / "model.safetensors").unlink(), ["no model.safetensors"]),
    ("no-config", lambda c: (c / "config.json").unlink(), ["no config.json"]),
    ("config-not-json", lambda c: (c / "config.json").write_text("{"), ["not valid JSON"]),
    ("config-unknown-key", _config(lambda d: d.__setitem__("extra", 1)), ["unknown key 'extra'"]),
    (
        "config-wrong-class",
        _config(lambda d: d.__setitem__("class_name", "Evil")),
        ["expected class_name", "'Evil'"],
    ),
    (
        "config-future-format",
        _config(lambda d: d.__setitem__("format_version", 99)),
        ["expected format_version", "99"],
    ),
    (
        "pickle-as-safetensors",
        lambda c: (c / "model.safetensors").write_bytes(planted_pickle(c)),
        ["not a readable safetensors file"],
    ),
]


@pytest.mark.parametrize(
    ("damage", "expected"), [pytest.param(d, e, id=i) for i, d, e in CHECKPOINTS]
)
def test_damaged_checkpoints_are_refused(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    checkpoint: Path,
    damage: Callable[[Path], None],
    expected: list[str],
) -> None:
    import shutil

    ckpt = shutil.copytree(checkpoint, tmp_path / "ckpt")
    damage(ckpt)
    out = tmp_path / "run"
    task = small_tasks(("small-rollout",))[0]
    argv = ["evaluate", "--model", "pan-ref", "--model-args", f"path={ckpt}", "--tasks", task]
    assert_refused(capsys, [*argv, "--out", str(out), "--no-progress"], expected, out=out)
    assert not (ckpt / MARKER).exists(), "loading the checkpoint ran code from it"


def test_a_missing_checkpoint_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("diffusers")
    task = small_tasks(("small-rollout",))[0]
    argv = ["evaluate", "--model", "pan-ref", "--model-args", f"path={tmp_path / 'nope'}"]
    out = tmp_path / "run"
    expected = ["Checkpoint folder", "not found", "config.json"]
    assert_refused(capsys, [*argv, "--tasks", task, "--out", str(out)], expected, out=out)


# ============================================================================ pinned weights
PAYLOAD = b"the real weights"


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    import hashlib

    monkeypatch.setenv("PANBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PANBENCH_WEIGHTS_ROBUST_NET", raising=False)
    entry = weights.WeightsEntry(
        name="robust-net",
        filename="robust.bin",
        description="test file",
        licence="CC0-1.0",
        size=len(PAYLOAD),
        sha256=hashlib.sha256(PAYLOAD).hexdigest(),
        hf_repo="someone/robust",
        hf_filename="robust.bin",
        hf_revision="0" * 40,
        urls=("https://example.invalid/robust.bin",),
    )
    with weights.registered(entry):
        yield tmp_path / "home" / "weights" / "robust.bin"


def test_weights_with_the_wrong_hash_are_refused(
    toy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    toy.parent.mkdir(parents=True)
    toy.write_bytes(b"something else!!")  # the right size, the wrong bytes
    assert_refused(capsys, ["weights", "path", "robust-net"], ["sha256", "robust.bin"])
    assert_refused(capsys, ["weights", "verify", "robust-net"], ["FAILED", "sha256"], code=1)


def test_missing_weights_say_the_command_to_run(
    toy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert_refused(capsys, ["weights", "path", "robust-net"], ["panbench weights pull robust-net"])


# ============================================================================ episode folders
@pytest.fixture(scope="module")
def episodes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from panbench.data.generate import generate_episodes

    return generate_episodes("shapes", 2, 3, 0, tmp_path_factory.mktemp("ds") / "ds", 32)


def _index(edit: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        data = json.loads((folder / "index.json").read_text())
        edit(data)
        (folder / "index.json").write_text(json.dumps(data))

    return apply


def _shard(folder: Path) -> Path:
    return folder / "shard-00000.safetensors"


def _set_frames(d: dict[str, Any]) -> None:
    d["episodes"][0]["num_frames"] = 7


#: (id, damage, expected fragments)
FOLDERS: list[tuple[str, Callable[[Path], None], list[str]]] = [
    ("truncated-shard", lambda f: _shard(f).write_bytes(_shard(f).read_bytes()[:100]), ["sha256"]),
    ("missing-shard", lambda f: _shard(f).unlink(), ["shard-00000.safetensors"]),
    ("no-index", lambda f: (f / "index.json").unlink(), ["No index.json"]),
    ("index-not-json", lambda f: (f / "index.json").write_text("{"), ["index"]),
    ("index-future-format", _index(lambda d: d.__setitem__("format_version", 9)), ["9"]),
    ("index-other-format", _index(lambda d: d.__setitem__("format", "hdf5")), ["'hdf5'"]),
    ("inconsistent-lengths", _index(_set_frames), ["has 3 frames", "the index lists 7"]),
    ("pickle-shard", lambda f: _shard(f).write_bytes(planted_pickle(f)), ["sha256"]),
]


@pytest.mark.parametrize(("damage", "expected"), [pytest.param(d, e, id=i) for i, d, e in FOLDERS])
def test_damaged_episode_folders_are_refused(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    episodes: Path,
    damage: Callable[[Path], None],
    expected: list[str],
) -> None:
    import shutil

    folder = shutil.copytree(episodes, tmp_path / "ds")
    damage(folder)
    assert_refused(capsys, ["data", "info", str(folder)], expected)
    assert not (folder / MARKER).exists()


def test_undecodable_videos_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "videos"
    src.mkdir()
    (src / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    out = tmp_path / "ds"
    assert_refused(capsys, ["data", "import-videos", str(src), "--out", str(out)], ["clip.mp4"])
    assert not out.exists()


def test_an_empty_video_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ds"
    assert_refused(capsys, ["data", "import-videos", str(tmp_path), "--out", str(out)], ["mp4"])
    assert not out.exists()


def test_resuming_onto_a_retrained_checkpoint_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], checkpoint: Path
) -> None:
    import shutil

    from panbench.cli import main
    from tests.reference_model.helpers import tiny_model

    ckpt = shutil.copytree(checkpoint, tmp_path / "ckpt")
    out = tmp_path / "run"
    task = small_tasks(("small-rollout",))[0]
    argv = ["evaluate", "--model", "pan-ref", "--model-args", f"path={ckpt}", "--tasks", task]
    argv += ["--out", str(out), "--limit", "1", "--no-progress"]
    assert main(argv) == 0
    (out / "results.json").unlink()  # as if the run had stopped before its end
    shutil.rmtree(ckpt)
    tiny_model(seed=2).save_pretrained(ckpt, training={"command": "test"})  # same path
    assert_refused(capsys, argv, ["holds a different run", "model_identity"], out=out)
