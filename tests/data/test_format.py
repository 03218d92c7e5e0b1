"""The episode format: records, content hashes, shards, the index and verification."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from panbench import __version__
from panbench.data.format import (
    FORMAT_VERSION,
    INDEX_FILE,
    DatasetWriter,
    EpisodeRecord,
    episode_hash,
    read_index,
    read_shard,
    verify_dataset,
)
from panbench.errors import ConfigError, DataError
from tests.data.toy import siblings

SOURCE = {"kind": "test"}


def make_record(episode_id: int, num_frames: int = 3, fill: int = 0) -> EpisodeRecord:
    frames = np.full((num_frames, 8, 8, 3), fill, dtype=np.uint8)
    frames[:, 0, 0, 0] = np.arange(num_frames)
    actions = [{"text": f"step {t}", "index": t, "kind": "agent"} for t in range(num_frames - 1)]
    states = {
        "positions": np.arange(num_frames * 2, dtype=np.float64).reshape(num_frames, 1, 2),
        "present": np.ones((num_frames, 1), dtype=bool),
    }
    return EpisodeRecord.build(episode_id, frames, actions, states, seed=100 + episode_id)


def write_folder(out: Path, records: list[EpisodeRecord], shard_size: int = 2) -> Path:
    with DatasetWriter(out, SOURCE, None, shard_size) as writer:
        for rec in records:
            writer.add(rec)
    return out


# ------------------------------------------------------------------------------------- records
def test_build_validates_frames_actions_and_states() -> None:
    frames = np.zeros((3, 8, 8, 3), dtype=np.uint8)
    two = [{"text": "a", "index": 0, "kind": "agent"}] * 2
    with pytest.raises(DataError, match="Expected 2 actions for 3 frames, but got 1"):
        EpisodeRecord.build(0, frames, two[:1])
    with pytest.raises(DataError, match="uint8"):
        EpisodeRecord.build(0, frames.astype(np.float32), two)
    with pytest.raises(DataError, match="3 rows"):
        EpisodeRecord.build(0, frames, two, {"positions": np.zeros((2, 1, 2))})
    with pytest.raises(DataError, match="dtype <U3"):
        EpisodeRecord.build(0, frames, two, {"names": np.array([["red"]] * 3)})
    with pytest.raises(DataError, match="int 'index'"):
        EpisodeRecord.build(0, frames, [{"text": "a", "index": "0", "kind": "agent"}] * 2)
    with pytest.raises(DataError, match="non-negative"):
        EpisodeRecord.build(-1, frames, two)


def test_single_frame_episode_has_no_actions() -> None:
    rec = EpisodeRecord.build(0, np.zeros((1, 8, 8, 3), np.uint8), [])
    assert rec.num_frames == 1 and rec.action_indices.shape == (0,)


def test_episode_hash_covers_frames_actions_and_states() -> None:
    rec = make_record(0)
    base = episode_hash(rec.frames, rec.actions, rec.states)
    assert base == rec.hash and len(base) == 64
    frames = rec.frames.copy()
    frames[-1, -1, -1, -1] ^= 1
    assert episode_hash(frames, rec.actions, rec.states) != base
    actions = [dict(a) for a in rec.actions]
    actions[0]["text"] = "other"
    assert episode_hash(rec.frames, actions, rec.states) != base
    states = dict(rec.states, positions=rec.states["positions"] + 0.5)
    assert episode_hash(rec.frames, rec.actions, states) != base
    # Same values in another dtype are another episode: the dtype is part of the hash.
    states = dict(rec.states, positions=rec.states["positions"].astype(np.float32))
    assert episode_hash(rec.frames, rec.actions, states) != base
    # Byte order and memory layout are normalised, so they do not change the hash.
    states = dict(rec.states, positions=rec.states["positions"].astype(">f8"))
    assert episode_hash(rec.frames, rec.actions, states) == base
    assert episode_hash(np.asfortranarray(rec.frames), rec.actions, rec.states) == base


# ------------------------------------------------------------------------------------- writer
def test_writer_round_trip_and_index(tmp_path: Path) -> None:
    records = [make_record(i, fill=i) for i in range(5)]
    out = write_folder(tmp_path / "ds", records, shard_size=2)
    assert sorted(p.name for p in out.iterdir()) == [
        INDEX_FILE,
        "shard-00000.safetensors",
        "shard-00001.safetensors",
        "shard-00002.safetensors",
    ]
    index = read_index(out)
    assert index.data["format_version"] == FORMAT_VERSION
    assert index.data["panbench_version"] == __version__
    assert index.data["num_frames"] == 3 and index.data["frame_shape"] == [8, 8, 3]
    assert index.data["state_keys"] == ["positions", "present"]
    assert [s.episode_ids for s in index.shards] == [(0, 1), (2, 3), (4,)]
    assert [e.seed for e in index.episodes] == [100, 101, 102, 103, 104]
    back = [r for n in range(3) for r in read_shard(index.shard_path(n), index.shards[n].sha256)]
    for want, got in zip(records, back, strict=True):
        assert got.episode_id == want.episode_id and got.seed == want.seed
        assert got.hash == want.hash
        np.testing.assert_array_equal(got.frames, want.frames)
        assert list(got.actions) == list(want.actions)
        assert sorted(got.states) == sorted(want.states)
        for key in want.states:
            assert got.states[key].dtype == want.states[key].dtype
            np.testing.assert_array_equal(got.states[key], want.states[key])
    assert verify_dataset(out).episodes == index.episodes
    assert "5 of 3 frames, in 3 shard(s)" in index.summary()


def test_writer_failure_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    with pytest.raises(RuntimeError), DatasetWriter(out, SOURCE, shard_size=1) as writer:
        writer.add(make_record(0))  # a shard is already on disk in the temporary folder
        raise RuntimeError("killed")
    assert siblings(out) == []


def test_writer_rejects_duplicate_ids_and_empty_output(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="added twice"), DatasetWriter(tmp_path / "a", SOURCE) as w:
        w.add(make_record(0))
        w.add(make_record(0))
    with pytest.raises(DataError, match="No episodes"), DatasetWriter(tmp_path / "b", SOURCE):
        pass
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ConfigError, match="shard_size"):
        DatasetWriter(tmp_path / "c", SOURCE, shard_size=0)


def test_writer_refuses_non_empty_out(tmp_path: Path) -> None:
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty"), DatasetWriter(tmp_path / "ds", SOURCE):
        pass
    assert [p.name for p in (tmp_path / "ds").iterdir()] == ["notes.txt"]


# ------------------------------------------------------------------------------------- damage
def test_missing_or_foreign_index(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        read_index(tmp_path / "nope")
    (tmp_path / "ds").mkdir()
    with pytest.raises(DataError, match=f"No {INDEX_FILE}"):
        read_index(tmp_path / "ds")
    (tmp_path / "ds" / INDEX_FILE).write_text("{not json")
    with pytest.raises(DataError, match="Could not read index"):
        read_index(tmp_path / "ds")
    (tmp_path / "ds" / INDEX_FILE).write_text('{"format": "something-else"}')
    with pytest.raises(DataError, match="expected format 'panbench-episodes'"):
        read_index(tmp_path / "ds")


def test_newer_format_version_is_refused(tmp_path: Path) -> None:
    out = write_folder(tmp_path / "ds", [make_record(0)])
    data = json.loads((out / INDEX_FILE).read_text())
    data["format_version"] = FORMAT_VERSION + 1
    (out / INDEX_FILE).write_text(json.dumps(data))
    with pytest.raises(DataError, match="upgrade panbench"):
        read_index(out)


def test_index_may_not_point_outside_the_folder(tmp_path: Path) -> None:
    out = write_folder(tmp_path / "ds", [make_record(0)])
    data = json.loads((out / INDEX_FILE).read_text())
    data["shards"][0]["file"] = "../elsewhere.safetensors"
    (out / INDEX_FILE).write_text(json.dumps(data))
    with pytest.raises(DataError, match="not a plain file name"):
        read_index(out)


def test_truncated_shard_is_detected(tmp_path: Path) -> None:
    out = write_folder(tmp_path / "ds", [make_record(i) for i in range(3)], shard_size=2)
    shard = out / "shard-00001.safetensors"
    listed = read_index(out).shards[1]
    shard.write_bytes(shard.read_bytes()[:-10])
    with pytest.raises(DataError) as info:
        verify_dataset(out)
    msg = str(info.value)
    assert "shard-00001.safetensors" in msg
    assert f"expected sha256 {listed.sha256} ({listed.bytes} bytes)" in msg
    assert f"({listed.bytes - 10} bytes)" in msg
    # Without the hash check it is still caught: safetensors cannot parse it.
    with pytest.raises(DataError, match=r"shard-00001\.safetensors is corrupt or unreadable"):
        read_shard(shard)


def test_flipped_byte_and_missing_shard_are_detected(tmp_path: Path) -> None:
    out = write_folder(tmp_path / "ds", [make_record(i) for i in range(3)], shard_size=2)
    shard = out / "shard-00000.safetensors"
    blob = bytearray(shard.read_bytes())
    blob[-1] ^= 0xFF  # a pixel: the file still parses, only the hashes catch it
    shard.write_bytes(bytes(blob))
    with pytest.raises(DataError, match=r"shard-00000\.safetensors.*expected sha256"):
        verify_dataset(out)
    assert read_shard(shard)[0].frames.shape == (3, 8, 8, 3)
    shard.unlink()
    with pytest.raises(DataError, match=r"shard-00000\.safetensors listed in the index is missing"):
        verify_dataset(out)


def test_verify_recomputes_episode_hashes(tmp_path: Path) -> None:
    # A shard and index rewritten consistently but with a wrong episode hash (e.g. a buggy
    # writer) pass the file hash check; recomputing the content hash catches it.
    rec = make_record(0)
    bad = EpisodeRecord(0, rec.frames, rec.actions, rec.states, rec.seed, None, "0" * 64)
    out = write_folder(tmp_path / "ds", [bad])
    with pytest.raises(DataError, match="expected content hash 0000"):
        verify_dataset(out)
    verify_dataset(out, check_episode_hashes=False)
