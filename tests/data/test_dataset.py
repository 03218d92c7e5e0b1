"""EpisodeDataset: items, lazy shard loading, verification and DataLoader use."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from panbench.data import EpisodeDataset, collate_episodes, generate_episodes, import_videos
from panbench.data.videos import write_video
from panbench.errors import DataError


@pytest.fixture
def folder(toy_env: str, tmp_path: Path) -> Path:
    return generate_episodes(toy_env, 5, 4, 0, tmp_path / "ds", 32, shard_size=2)


def test_items_have_documented_types_and_shapes(folder: Path) -> None:
    dataset = EpisodeDataset(folder)
    assert len(dataset) == 5
    item = dataset[3]
    rec = dataset.record(3)
    assert item["frames"].dtype == torch.uint8 and item["frames"].shape == (4, 32, 32, 3)
    assert torch.equal(item["frames"], torch.from_numpy(rec.frames))
    assert len(item["actions"]) == 3
    assert set(item["actions"][0]) >= {"text", "index", "kind"}
    assert item["action_indices"].dtype == torch.int64
    assert item["action_indices"].tolist() == [a["index"] for a in item["actions"]]
    assert item["states"]["positions"].shape == (4, 1, 2)
    assert item["states"]["positions"].dtype == torch.float64
    assert item["states"]["present"].dtype == torch.bool
    assert item["episode_id"] == 3 and item["seed"] == rec.seed and item["hash"] == rec.hash
    assert dataset[-1]["episode_id"] == 4
    with pytest.raises(IndexError):
        dataset[5]
    # Items are copies: writing into one does not change what the cache hands out next.
    item["frames"].zero_()
    assert torch.equal(dataset[3]["frames"], torch.from_numpy(rec.frames))


def test_shards_load_lazily_into_a_bounded_cache(folder: Path) -> None:
    dataset = EpisodeDataset(folder, cache_shards=1)
    assert dataset._cache == {}
    dataset[0]
    assert list(dataset._cache) == [0]
    dataset[4]
    assert list(dataset._cache) == [2]


def test_dataloader_default_collate_and_collate_episodes(folder: Path) -> None:
    dataset = EpisodeDataset(folder)
    batches = list(DataLoader(dataset, batch_size=2, num_workers=0))
    assert [b["frames"].shape[0] for b in batches] == [2, 2, 1]
    assert batches[0]["frames"].shape == (2, 4, 32, 32, 3)
    assert batches[0]["episode_id"].tolist() == [0, 1]
    loader = DataLoader(dataset, batch_size=3, shuffle=False, collate_fn=collate_episodes)
    batch = next(iter(loader))
    assert batch["frames"].shape == (3, 4, 32, 32, 3)
    assert batch["action_indices"].shape == (3, 3)
    assert batch["states"]["positions"].shape == (3, 4, 1, 2)
    assert batch["seed"].dtype == torch.int64 and len(batch["hash"]) == 3
    assert batch["actions"][1] == dataset[1]["actions"]


def test_collate_refuses_mixed_lengths(toy_env: str, tmp_path: Path) -> None:
    short = EpisodeDataset(generate_episodes(toy_env, 1, 2, 0, tmp_path / "a", 32))[0]
    long = EpisodeDataset(generate_episodes(toy_env, 1, 3, 0, tmp_path / "b", 32))[0]
    with pytest.raises(DataError, match="of one shape"):
        collate_episodes([short, long])


def test_corrupt_shard_is_caught_on_first_open(folder: Path) -> None:
    shard = folder / "shard-00001.safetensors"
    blob = bytearray(shard.read_bytes())
    blob[-1] ^= 1
    shard.write_bytes(bytes(blob))
    dataset = EpisodeDataset(folder)
    dataset[0]  # other shards stay usable
    with pytest.raises(DataError, match=r"shard-00001\.safetensors.*expected sha256"):
        dataset[2]
    # verify=False trusts the file: the flipped pixel comes through.
    frames = EpisodeDataset(folder, verify=False)[3]["frames"]
    assert frames.shape == (4, 32, 32, 3)


def test_truncated_shard_fails_even_without_verification(folder: Path) -> None:
    shard = folder / "shard-00002.safetensors"
    shard.write_bytes(shard.read_bytes()[:-1])
    with pytest.raises(DataError, match=r"shard-00002\.safetensors is corrupt"):
        EpisodeDataset(folder, verify=False)[4]


def test_missing_index(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        EpisodeDataset(tmp_path / "nothing")


def test_video_items_have_seed_minus_one(tmp_path: Path) -> None:
    src = tmp_path / "videos"
    src.mkdir()
    write_video(src / "a.mp4", np.full((3, 16, 16, 3), 128, np.uint8))
    item = EpisodeDataset(import_videos(src, tmp_path / "ds", progress=False))[0]
    assert item["seed"] == -1 and item["states"] == {}
    assert item["action_indices"].tolist() == [-1, -1]
    assert next(iter(DataLoader(EpisodeDataset(tmp_path / "ds"))))["seed"].tolist() == [-1]
