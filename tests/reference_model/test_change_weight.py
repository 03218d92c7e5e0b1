"""change_weight (loss up-weighted where the latent changes) and effective_only training data."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from panbench.errors import ConfigError
from reference_model.config import DataConfig
from reference_model.data import WindowStream
from reference_model.model import PanModel
from tests.reference_model.helpers import tiny_config

ACTIONS = [["move the red circle up", "move the blue square left"]] * 2


def _model(change_weight: float, threshold: float = 0.25) -> PanModel:
    cfg = dataclasses.replace(
        tiny_config(), change_weight=change_weight, change_threshold=threshold
    )
    torch.manual_seed(0)
    return PanModel(cfg)


def _latents(seed: int, m: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    prev = rng.normal(size=(m, 4, 16, 16)).astype(np.float32)
    target = prev.copy()
    target[:, 2, 3:7, 5:9] += 1.0  # a moved patch in one channel
    target[:, 0, 10, 10] -= 0.1  # a change below the threshold
    return torch.from_numpy(prev), torch.from_numpy(target)


def test_change_weights_mark_cells_that_change() -> None:
    prev, target = _latents(0)
    weight = _model(4.0).change_weights(prev, target)
    assert weight is not None and weight.shape == (3, 1, 16, 16)
    expected = np.ones((3, 1, 16, 16))
    expected[:, :, 3:7, 5:9] = 5.0  # only the change above 0.25, in any channel
    np.testing.assert_array_equal(weight.numpy(), expected)
    assert _model(0.0).change_weights(prev, target) is None


def test_decoder_loss_is_the_weighted_mean() -> None:
    model = _model(4.0)
    prev, target = _latents(1)
    weight = model.change_weights(prev, target)
    states = torch.zeros(3, model.config.num_state_tokens, model.config.backbone.hidden_size)
    # A denoiser that outputs zeros makes the x0 error target**2, known without the UNet.
    model.decoder.denoise = lambda noisy, p, t, s: torch.zeros_like(noisy)  # type: ignore[method-assign,assignment]
    gen = torch.Generator().manual_seed(0)
    loss = float(model.decoder.loss(target, prev, states, gen, weight))
    t2, w = target.numpy().astype(np.float64) ** 2, weight.numpy().astype(np.float64)  # type: ignore[union-attr]
    assert loss == pytest.approx((t2 * w).sum() / (w.sum() * 4), rel=1e-5)
    plain = float(model.decoder.loss(target, prev, states, gen))
    assert plain == pytest.approx(t2.mean(), rel=1e-5)
    assert loss > plain  # the changed cells carry the larger errors here


def test_dynamics_latent_loss_uses_the_change_weights() -> None:
    rng = np.random.default_rng(2)
    frames = torch.from_numpy(rng.integers(0, 256, (2, 3, 32, 32, 3), dtype=np.uint8))
    model = _model(9.0, threshold=0.5)
    ids = model.encode_actions(ACTIONS)
    losses = model.dynamics_loss(frames, ids, torch.Generator().manual_seed(0))
    with torch.no_grad():
        z = model.encode_frames(frames)
        states = model.backbone(z[:, :-1], ids).flatten(0, 1)
        pred = model.backbone.to_latent(states).numpy().astype(np.float64)
    prev, nxt = z[:, :-1].flatten(0, 1).numpy(), z[:, 1:].flatten(0, 1).numpy()
    w = 1.0 + 9.0 * (np.abs(nxt - prev).max(axis=1, keepdims=True) > 0.5)
    assert 0 < (w > 1).mean() < 1  # both kinds of cells present
    err = (pred - nxt) ** 2
    expected = (err * w).sum() / (w.sum() * err.shape[1])
    assert float(losses["latent"].detach()) == pytest.approx(expected, rel=1e-4)


def test_negative_change_weight_is_refused() -> None:
    with pytest.raises(ConfigError, match="change_weight >= 0"):
        dataclasses.replace(tiny_config(), change_weight=-1.0).validate()


def _unchanged_transitions(effective_only: bool) -> int:
    data = DataConfig(effective_only=effective_only)
    frames, _ = WindowStream(data, 32, 3, seed=0).batch(0, 48)
    diffs = (frames[:, 1:].int() - frames[:, :-1].int()).abs().flatten(2).amax(-1)
    return int((diffs == 0).sum())


def test_effective_only_skips_actions_without_a_visible_effect() -> None:
    assert _unchanged_transitions(False) > 0  # blocked moves happen under the agent policy
    assert _unchanged_transitions(True) == 0
