"""Unrolled training (``train.unroll``): the model learns frames after its own samples."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from panbench.errors import ConfigError
from reference_model.recipes import train
from tests.reference_model.helpers import tiny_model, write_run_config

TEXTS = [["move the red circle up", "move the blue square left", "wait"]] * 2


def _frames(seed: int, t: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.integers(0, 256, (2, t, 32, 32, 3), dtype=np.uint8))


def test_the_teacher_forced_part_is_the_loss_without_unroll() -> None:
    model = tiny_model().train()
    frames, ids = _frames(0, 4), model.encode_actions(TEXTS)
    plain = model.dynamics_loss(frames[:, :3], ids[:, :2], torch.Generator().manual_seed(5))
    unrolled = model.dynamics_loss(frames, ids, torch.Generator().manual_seed(5), unroll=1)
    assert "unroll" not in plain
    for key in ("diffusion", "latent", "collapse"):
        assert torch.equal(plain[key], unrolled[key]), key
    assert float(unrolled["unroll"].detach()) > 0
    assert torch.allclose(unrolled["loss"], plain["loss"] + unrolled["unroll"])


def test_the_unrolled_history_is_the_models_own_reencoded_sample() -> None:
    model = tiny_model().train()
    frames, ids = _frames(1, 4), model.encode_actions(TEXTS)
    with torch.no_grad():
        truth = model.encode_frames(frames)
    samples: list[tuple[torch.Tensor, torch.Tensor]] = []
    histories: list[tuple[torch.Tensor, torch.Tensor]] = []
    sample, forward = model.decoder.sample, model.backbone.forward

    def spy_sample(prev, states, gens, steps=None, guidance=None):  # type: ignore[no-untyped-def]
        out = sample(prev, states, gens, steps, guidance)
        samples.append((prev.clone(), out.clone()))
        assert steps == 2
        return out

    def spy_forward(latents, action_ids):  # type: ignore[no-untyped-def]
        histories.append((latents.detach().clone(), action_ids.clone()))
        return forward(latents, action_ids)

    model.decoder.sample = spy_sample  # type: ignore[method-assign]
    model.backbone.forward = spy_forward  # type: ignore[method-assign]
    losses = model.dynamics_loss(
        frames, ids, torch.Generator().manual_seed(0), unroll=1, unroll_steps=2
    )
    assert len(samples) == 1 and len(histories) == 2
    prev, sampled = samples[0]
    assert torch.equal(prev, truth[:, 1])  # sampled after the true history
    first, second = histories
    assert torch.equal(first[0], truth[:, :2]) and torch.equal(first[1], ids[:, :2])
    with torch.no_grad():
        reencoded = model.encode_frames(model.decode_latents(sampled)[:, None])[:, 0]
    # the history of frame 3: true frame 1, then frame 2 as the model drew and re-encoded it
    assert torch.equal(second[0][:, 0], truth[:, 1])
    assert torch.equal(second[0][:, 1], reencoded)
    assert not torch.allclose(second[0][:, 1], truth[:, 2])
    assert torch.equal(second[1], ids[:, 1:3])
    model.zero_grad()
    losses["unroll"].backward()
    for part in (model.backbone, model.decoder):
        assert sum(float(p.grad.abs().sum()) for p in part.parameters() if p.grad is not None) > 0


def test_with_the_true_history_only_g_sees_the_sample() -> None:
    model = tiny_model().train()
    frames, ids = _frames(3, 4), model.encode_actions(TEXTS)
    with torch.no_grad():
        truth = model.encode_frames(frames)
    histories: list[torch.Tensor] = []
    prevs: list[torch.Tensor] = []
    forward, loss = model.backbone.forward, model.decoder.loss

    def spy_forward(latents, action_ids):  # type: ignore[no-untyped-def]
        histories.append(latents.detach().clone())
        return forward(latents, action_ids)

    def spy_loss(target, prev, states, generator, weight=None):  # type: ignore[no-untyped-def]
        prevs.append(prev.detach().clone())
        return loss(target, prev, states, generator, weight)

    model.backbone.forward = spy_forward  # type: ignore[method-assign]
    model.decoder.loss = spy_loss  # type: ignore[method-assign]
    model.dynamics_loss(
        frames, ids, torch.Generator().manual_seed(0), unroll=1, unroll_history="true"
    )
    assert len(histories) == 2 and len(prevs) == 2
    assert torch.equal(histories[1], truth[:, 1:3])  # f: the true frames 1 and 2
    assert not torch.allclose(prevs[1], truth[:, 2])  # g: frame 2 as the model drew it


def test_a_window_without_room_for_the_unroll_is_refused() -> None:
    model = tiny_model().train()
    frames, ids = _frames(2, 2), model.encode_actions([t[:1] for t in TEXTS])
    with pytest.raises(ConfigError, match="more than unroll"):
        model.dynamics_loss(frames, ids, torch.Generator().manual_seed(0), unroll=1)


def _with_unroll(config: Path, unroll: int) -> Path:
    text = config.read_text().replace("  seed: 3\n", f"  seed: 3\n  unroll: {unroll}\n")
    config.write_text(text)
    return config


def test_unrolled_training_logs_the_loss_and_resumes_bit_exactly(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    config = _with_unroll(write_run_config(tmp_path / "run.yaml", ae_steps=1, steps=3), 1)
    train(config, tmp_path / "straight")
    train(config, tmp_path / "split", max_steps=2)
    train(config, tmp_path / "split", resume=True)
    for name in ("model.safetensors", "ema.safetensors"):
        a = load_file(str(tmp_path / "straight" / "checkpoint" / name))
        b = load_file(str(tmp_path / "split" / "checkpoint" / name))
        assert all(a[k].equal(b[k]) for k in a), name
    rows = list(csv.DictReader((tmp_path / "straight" / "log.csv").read_text().splitlines()))
    assert [r["unroll"] for r in rows[:1]] == [""]  # the autoencoder stage has no unroll
    assert all(float(r["unroll"]) > 0 for r in rows[1:])
    assert (tmp_path / "straight" / "samples" / "step-0000003.png").is_file()
    saved = json.loads((tmp_path / "straight" / "model" / "config.json").read_text())
    assert saved["training"]["run"]["train"]["unroll"] == 1


def test_negative_unroll_is_refused(tmp_path: Path) -> None:
    config = _with_unroll(write_run_config(tmp_path / "run.yaml"), -1)
    with pytest.raises(ConfigError, match=r"train\.unroll >= 0"):
        train(config, tmp_path / "out")


def test_an_unknown_unroll_history_is_refused(tmp_path: Path) -> None:
    config = _with_unroll(write_run_config(tmp_path / "run.yaml"), 1)
    config.write_text(
        config.read_text().replace("  unroll: 1\n", "  unroll: 1\n  unroll_history: both\n")
    )
    with pytest.raises(ConfigError, match="unroll_history 'sampled' or 'true', but got 'both'"):
        train(config, tmp_path / "out")


def test_unrolled_windows_read_from_a_folder_and_need_room(tmp_path: Path) -> None:
    from panbench.data import generate_episodes

    generate_episodes("shapes", episodes=2, length=4, seed=0, out=tmp_path / "data", resolution=32)
    folder = {"source": "folder", "path": str(tmp_path / "data")}
    fits = _with_unroll(write_run_config(tmp_path / "a.yaml", ae_steps=0, steps=1, **folder), 1)
    train(fits, tmp_path / "a")  # 4 frames: history 2 + 1 + one unrolled frame
    rows = list(csv.DictReader((tmp_path / "a" / "log.csv").read_text().splitlines()))
    assert float(rows[-1]["unroll"]) > 0
    too_long = _with_unroll(write_run_config(tmp_path / "b.yaml", ae_steps=0, steps=1, **folder), 2)
    with pytest.raises(ConfigError, match=r"at most 4 frames.*needs 5 .*train\.unroll"):
        train(too_long, tmp_path / "b")
