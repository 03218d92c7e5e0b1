"""The feature cache: window cutting, round trip against the encoders, stale refusal, resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from panbench.data import EpisodeDataset, generate_episodes
from panbench.data.frames import resize_frames
from panbench.errors import DataError
from reference_model.ow.cache import (
    CacheSettings,
    FeatureCache,
    build_cache,
    cache_key,
    chunk_text,
    enumerate_windows,
    resample_chunk,
)
from tests.reference_model.ow.ow_helpers import tiny_model


@pytest.fixture(scope="module")
def episodes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ow-cache") / "episodes"
    return generate_episodes("shapes", episodes=2, length=7, seed=5, out=out, resolution=48)


def settings(**kw: object) -> CacheSettings:
    base: dict[str, object] = dict(
        resolution=32, frames_per_action=1, pixel_frames=4, chunks_per_window=2, window_stride=2
    )
    base.update(kw)
    return CacheSettings(**base)  # type: ignore[arg-type]


def test_resample_chunk_and_chunk_text_tables() -> None:
    assert resample_chunk(1, 4) == [0, 0, 0, 0]
    assert resample_chunk(4, 4) == [0, 1, 2, 3]
    assert resample_chunk(2, 4) == [0, 0, 1, 1]
    assert resample_chunk(3, 4) == [0, 1, 2, 2]
    assert chunk_text(["a", "a", "b", "a"]) == "a; b; a"
    assert chunk_text(["up"]) == "up"


def test_enumerate_windows_starts_and_lengths() -> None:
    refs = enumerate_windows([7, 4, 9], ["x", "y", "z"], settings(frames_per_action=2))
    # 3, 1 and 4 chunks of 2 steps; windows of 2 chunks every 2 chunks.
    assert [(r.episode, r.start) for r in refs] == [(0, 0), (2, 0), (2, 2)]
    stride1 = enumerate_windows([7], ["x"], settings(window_stride=1))
    assert [r.start for r in stride1] == [0, 1, 2, 3, 4]


def test_round_trip_matches_the_encoders(episodes: Path, tmp_path: Path) -> None:
    model = tiny_model()
    s = settings()
    cache = build_cache(
        tmp_path / "c",
        episodes,
        s,
        model.feature_fingerprint(),
        model.encode_video,
        model.encode_text,
        shard_size=4,
    )
    data = EpisodeDataset(episodes)
    assert len(cache) == 6 and len(cache.doc["shards"]) == 2  # 2 episodes x 3 windows
    for i in (0, 4):
        item = cache.window(i)
        rec = data.record(item["ref"].episode)
        start = item["ref"].start
        frames = resize_frames(np.asarray(rec.frames), 32, mode="center-crop")
        # Window: the conditioning frame, then each chunk's one new frame repeated 4 times.
        video = frames[[start, *[start + 1] * 4, *[start + 2] * 4]]
        x = torch.from_numpy(video).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        want = model.encode_video(x[None])[0]
        torch.testing.assert_close(item["latents"], want, rtol=0, atol=1e-6)
        np.testing.assert_array_equal(item["frames"].numpy(), frames[[start, start + 1]])
        texts = [rec.actions[start]["text"], rec.actions[start + 1]["text"]]
        assert item["texts"] == texts
        emb, mask = model.encode_text(texts)
        for c in range(2):
            n = int(mask[c].sum())
            torch.testing.assert_close(item["embeddings"][c], emb[c, :n], rtol=0, atol=0)
    batch = cache.batch([0, 5], text_len=16)
    assert batch["text"].shape == (2, 2, 16, 16) and batch["text_mask"].shape == (2, 2, 16)
    assert batch["latents"].shape == (2, 4, 3, 4, 4)
    # Zero past each text, as the decoder's own encode_text gives it.
    assert float(batch["text"][~batch["text_mask"]].abs().sum()) == 0.0
    # A second build is a no-op returning the same cache.
    again = build_cache(
        tmp_path / "c", episodes, s, model.feature_fingerprint(), _boom, _boom, shard_size=4
    )
    assert len(again) == 6


def _boom(*_: object) -> tuple[torch.Tensor, torch.Tensor]:
    raise AssertionError("a complete cache must not encode again")


def test_stale_cache_is_refused(episodes: Path, tmp_path: Path) -> None:
    model = tiny_model()
    fp = model.feature_fingerprint()
    build_cache(tmp_path / "c", episodes, settings(), fp, model.encode_video, model.encode_text)
    with torch.no_grad():  # other VAE weights: another fingerprint
        next(model.decoder.vae.parameters()).add_(1e-3)
    fp2 = model.feature_fingerprint()
    assert fp2 != fp
    with pytest.raises(DataError, match=r"stale.*VAE / umT5"):
        build_cache(tmp_path / "c", episodes, settings(), fp2, _boom, _boom)
    with pytest.raises(DataError, match=r"stale.*window settings"):
        FeatureCache(
            tmp_path / "c", cache_key(fp, settings(pixel_frames=8), episodes / "index.json")
        )
    FeatureCache(tmp_path / "c", cache_key(fp, settings(), episodes / "index.json"))


def test_interrupted_build_resumes_to_identical_shards(episodes: Path, tmp_path: Path) -> None:
    model = tiny_model()
    fp, s = model.feature_fingerprint(), settings()
    calls = {"n": 0}

    def flaky(x: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        if calls["n"] == 4:  # dies inside the second shard (shard size 3)
            raise KeyboardInterrupt
        return model.encode_video(x)

    with pytest.raises(KeyboardInterrupt):
        build_cache(tmp_path / "r", episodes, s, fp, flaky, model.encode_text, shard_size=3)
    index = json.loads((tmp_path / "r" / "index.json").read_text())
    assert len(index["shards"]) == 1 and index["complete"] is False
    with pytest.raises(DataError, match="incomplete"):
        FeatureCache(tmp_path / "r", None)
    calls["n"] = 10
    build_cache(tmp_path / "r", episodes, s, fp, flaky, model.encode_text, shard_size=3)
    assert calls["n"] == 13  # only the second shard's 3 windows were encoded again
    fresh = build_cache(
        tmp_path / "f", episodes, s, fp, model.encode_video, model.encode_text, shard_size=3
    )
    for a, b in zip(
        json.loads((tmp_path / "r" / "index.json").read_text())["shards"],
        fresh.doc["shards"],
        strict=True,
    ):
        assert a["sha256"] == b["sha256"]


def test_corrupt_shard_is_named(episodes: Path, tmp_path: Path) -> None:
    model = tiny_model()
    cache = build_cache(
        tmp_path / "c",
        episodes,
        settings(),
        model.feature_fingerprint(),
        model.encode_video,
        model.encode_text,
    )
    shard = tmp_path / "c" / cache.doc["shards"][0]["file"]
    shard.write_bytes(shard.read_bytes()[:-8] + b"xxxxxxxx")
    with pytest.raises(DataError, match=r"shard-00000\.safetensors is corrupt"):
        FeatureCache(tmp_path / "c", None).window(0)


def test_too_short_episodes_are_refused(episodes: Path, tmp_path: Path) -> None:
    model = tiny_model()
    with pytest.raises(DataError, match="needs 13 frames"):
        build_cache(
            tmp_path / "c",
            episodes,
            settings(frames_per_action=6),
            "x",
            model.encode_video,
            model.encode_text,
        )
