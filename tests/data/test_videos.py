"""Video IO with PyAV and import of a folder of videos as episodes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from panbench.cli import main
from panbench.data import (
    EpisodeDataset,
    import_videos,
    read_index,
    read_video,
    resize_frames,
    verify_dataset,
    write_video,
)
from panbench.data.videos import default_codec, read_actions_file
from panbench.errors import ConfigError, DataError
from tests.data.toy import siblings


def smooth_frames(num_frames: int, height: int, width: int, phase: int = 0) -> np.ndarray:
    """Moving colour gradients: smooth content a lossy codec reproduces closely."""
    assert num_frames + phase <= 12, "keeps the red ramp below 256"
    y, x = np.mgrid[0:height, 0:width]
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    for t in range(num_frames):
        # No wrap-around: a hard 255 -> 0 edge would be smeared by the codec.
        frames[t, ..., 0] = x * 160 // max(width - 1, 1) + 8 * (t + phase)
        frames[t, ..., 1] = y * 255 // max(height - 1, 1)
        frames[t, ..., 2] = 128
    return frames


def make_videos(src: Path, specs: dict[str, tuple[int, int, int]]) -> dict[str, np.ndarray]:
    src.mkdir(parents=True, exist_ok=True)
    written = {}
    for i, (name, (t, h, w)) in enumerate(specs.items()):
        written[name] = smooth_frames(t, h, w, phase=i)
        write_video(src / name, written[name])
    return written


def write_actions(src: Path, entries: list[dict[str, object]]) -> None:
    (src / "actions.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries))


def test_write_read_round_trip_within_tolerance(tmp_path: Path) -> None:
    frames = smooth_frames(10, 32, 48)
    write_video(tmp_path / "v.mp4", frames)
    back = read_video(tmp_path / "v.mp4")
    assert back.shape == frames.shape and back.dtype == np.uint8
    # Lossy codec + yuv420p chroma subsampling: close on average, not exact.
    assert np.abs(back.astype(int) - frames.astype(int)).mean() < 4.0
    assert read_video(tmp_path / "v.mp4", max_frames=3).shape == (3, 32, 48, 3)
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"]  # no temporary file left


def test_default_codec_is_usable(tmp_path: Path) -> None:
    assert default_codec() in ("libx264", "mpeg4")
    write_video(tmp_path / "m.mp4", smooth_frames(3, 16, 16), codec="mpeg4")
    assert read_video(tmp_path / "m.mp4").shape == (3, 16, 16, 3)


def test_write_video_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="even"):
        write_video(tmp_path / "a.mp4", np.zeros((2, 15, 16, 3), np.uint8))
    with pytest.raises(ConfigError, match="uint8"):
        write_video(tmp_path / "a.mp4", np.zeros((2, 16, 16, 3), np.float32))
    with pytest.raises(ConfigError, match="ending in"):
        write_video(tmp_path / "a.gif", np.zeros((2, 16, 16, 3), np.uint8))
    with pytest.raises(ConfigError, match="no-such-codec"):
        write_video(tmp_path / "a.mp4", np.zeros((2, 16, 16, 3), np.uint8), codec="no-such-codec")
    assert list(tmp_path.iterdir()) == []


def test_import_round_trip_with_actions(tmp_path: Path) -> None:
    src = tmp_path / "videos"
    written = make_videos(src, {"b.mp4": (6, 32, 32), "a.mp4": (4, 32, 32)})
    write_actions(
        src,
        [
            {"video": "a.mp4", "actions": ["open the door", "walk in", "sit"]},
            {"video": "b.mp4", "actions": [f"step {i}" for i in range(5)]},
        ],
    )
    out = import_videos(src, tmp_path / "ds", progress=False)
    index = verify_dataset(out)
    assert index.env is None and index.source["kind"] == "video"
    assert index.source["import"]["videos"] == ["a.mp4", "b.mp4"]
    assert [e.source for e in index.episodes] == ["a.mp4", "b.mp4"]
    assert [e.seed for e in index.episodes] == [None, None]
    dataset = EpisodeDataset(out)
    for i, name in enumerate(["a.mp4", "b.mp4"]):
        item = dataset[i]
        want = written[name]
        assert tuple(item["frames"].shape) == want.shape
        diff = np.abs(item["frames"].numpy().astype(int) - want.astype(int))
        assert diff.mean() < 4.0
        assert item["states"] == {}
    assert [a["text"] for a in dataset[0]["actions"]] == ["open the door", "walk in", "sit"]
    assert {a["kind"] for a in dataset[1]["actions"]} == {"agent"}


def test_import_without_actions_resize_and_max_frames(tmp_path: Path) -> None:
    src = tmp_path / "videos"
    written = make_videos(src, {"wide.mp4": (5, 48, 64), "other.MP4": (7, 32, 40)})
    out = import_videos(src, tmp_path / "ds", resolution=32, max_frames=4, progress=False)
    index = read_index(out)
    assert index.data["frame_shape"] == [32, 32, 3] and index.data["num_frames"] == 4
    assert index.source["import"]["resampling"].startswith("center crop")
    item = EpisodeDataset(out)[1]  # "wide.mp4" sorts after "other.MP4"
    assert item["actions"] == [{"text": "", "index": -1, "kind": "none"}] * 3
    expected = resize_frames(written["wide.mp4"][:4], 32, mode="center-crop")
    assert np.abs(item["frames"].numpy().astype(int) - expected.astype(int)).mean() < 4.0


def test_native_sizes_must_agree_without_resolution(tmp_path: Path) -> None:
    src = tmp_path / "videos"
    make_videos(src, {"a.mp4": (3, 32, 32), "b.mp4": (3, 32, 48)})
    with pytest.raises(DataError, match=r"a\.mp4 is 32x32, b\.mp4 is 48x32; pass --resolution"):
        import_videos(src, tmp_path / "ds", progress=False)
    assert siblings(tmp_path / "ds") == []


def test_action_count_must_be_frames_minus_one(tmp_path: Path) -> None:
    src = tmp_path / "videos"
    make_videos(src, {"a.mp4": (4, 16, 16)})
    write_actions(src, [{"video": "a.mp4", "actions": ["x", "y"]}])
    with pytest.raises(DataError, match=r"expected 3 actions for a.mp4 \(4 decoded frames\)"):
        import_videos(src, tmp_path / "ds", progress=False)
    assert siblings(tmp_path / "ds") == []


def test_actions_file_must_cover_the_videos(tmp_path: Path) -> None:
    src = tmp_path / "videos"
    make_videos(src, {"a.mp4": (2, 16, 16), "b.mp4": (2, 16, 16)})
    write_actions(src, [{"video": "a.mp4", "actions": ["x"]}, {"video": "c.mp4", "actions": []}])
    with pytest.raises(DataError, match=r"not listed: \['b.mp4'\]; listed but not found: \['c"):
        import_videos(src, tmp_path / "ds", progress=False)


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("{oops", "line 2: not valid JSON"),
        ('{"video": "a.mp4"}', 'line 2: expected an object with exactly the keys "video"'),
        ('{"video": "../a.mp4", "actions": []}', 'line 2: expected "video" to be a file name'),
        ('{"video": "b.mp4", "actions": [1]}', 'line 2: expected "actions" to be a list of str'),
        ('{"video": "a.mp4", "actions": []}', "line 2: video 'a.mp4' is listed a second time"),
    ],
)
def test_actions_file_schema_errors(tmp_path: Path, line: str, match: str) -> None:
    path = tmp_path / "actions.jsonl"
    path.write_text('{"video": "a.mp4", "actions": ["x"]}\n' + line + "\n\n")
    with pytest.raises(DataError, match=match):
        read_actions_file(path)


def test_undecodable_video_names_the_file(tmp_path: Path) -> None:
    src = tmp_path / "videos"
    make_videos(src, {"good.mp4": (3, 16, 16)})
    (src / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    with pytest.raises(DataError, match=r"Could not decode video .*broken.mp4 while opening"):
        import_videos(src, tmp_path / "ds", progress=False)
    assert siblings(tmp_path / "ds") == []


def test_truncated_video_is_an_error(tmp_path: Path) -> None:
    write_video(tmp_path / "v.mp4", smooth_frames(8, 32, 32))
    blob = (tmp_path / "v.mp4").read_bytes()
    (tmp_path / "v.mp4").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match=r"v\.mp4"):
        read_video(tmp_path / "v.mp4")


def test_empty_or_missing_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no videos here")
    with pytest.raises(DataError, match=r"No videos found in .*empty"):
        import_videos(tmp_path / "empty", tmp_path / "ds", progress=False)
    with pytest.raises(DataError, match="does not exist"):
        import_videos(tmp_path / "missing", tmp_path / "ds", progress=False)
    with pytest.raises(ConfigError, match="resolution"):
        import_videos(tmp_path / "empty", tmp_path / "ds", resolution=0, progress=False)
    assert siblings(tmp_path / "ds") == []


def test_cli_import_videos(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "videos"
    make_videos(src, {"a.mp4": (5, 32, 32)})
    out = tmp_path / "ds"
    assert main(["data", "import-videos", str(src), "--out", str(out), "--resolution", "16"]) == 0
    assert "imported videos" in capsys.readouterr().out
    assert EpisodeDataset(out)[0]["frames"].shape == (5, 16, 16, 3)
    assert main(["data", "info", str(out)]) == 0
    assert "video import" in capsys.readouterr().out
    (src / "bad.mp4").write_bytes(b"not a video")
    assert main(["data", "import-videos", str(src), "--out", str(tmp_path / "ds2")]) == 2
    assert "bad.mp4" in capsys.readouterr().err
    assert siblings(tmp_path / "ds2") == []
