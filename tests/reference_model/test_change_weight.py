"""change_weight and object_weight (loss up-weighted where the latent changes or covers an
object) and effective_only training data."""

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


# ------------------------------------------------------------------------------ object_weight
def _object_model(object_weight: float, change_weight: float = 0.0) -> PanModel:
    cfg = dataclasses.replace(
        tiny_config(), object_weight=object_weight, change_weight=change_weight
    )
    torch.manual_seed(0)
    return PanModel(cfg)


def _scene_frames(seed: int, b: int = 2, t: int = 3) -> np.ndarray:
    """Grey frames with a few small coloured squares (objects) at random places."""
    rng = np.random.default_rng(seed)
    frames = np.full((b, t, 32, 32, 3), 128, np.uint8)
    for i in range(b):
        for j in range(t):
            for _ in range(3):
                y, x = rng.integers(0, 29, 2)
                frames[i, j, y : y + 3, x : x + 3] = rng.integers(0, 256, 3)
    return frames


def _numpy_object_cells(frames: np.ndarray) -> np.ndarray:
    """Independent reference: a pixel is an object pixel when its colour (in [-1, 1]) is more
    than 0.3 from the frame's median colour, summed over channels; a 2x2 block of pixels is one
    latent cell of tiny_config's 16x16 grid."""
    x = frames.astype(np.float64) / 127.5 - 1.0
    median = np.median(x.reshape(*x.shape[:2], -1, 3), axis=2)[:, :, None, None, :]
    obj = np.abs(x - median).sum(-1) > 0.3  # [B, T, 32, 32]
    cells = obj.reshape(*obj.shape[:2], 16, 2, 16, 2).any(axis=(3, 5))
    return cells[:, :, None].astype(np.float64)


def test_object_cells_match_an_independent_reference() -> None:
    frames = _scene_frames(0)
    cells = _object_model(2.0).object_cells(torch.from_numpy(frames))
    expected = _numpy_object_cells(frames)
    assert cells.shape == (2, 3, 1, 16, 16)
    assert 0 < expected.mean() < 0.5  # objects are present and small
    np.testing.assert_array_equal(cells.numpy(), expected)
    # a square whose colour is the background's is no object
    frames[:] = 128
    assert float(_object_model(2.0).object_cells(torch.from_numpy(frames)).sum()) == 0


def test_change_and_object_weights_add_up() -> None:
    prev, target = _latents(3, m=2)
    objects = torch.zeros(2, 1, 16, 16)
    objects[:, :, 4:6, 6:8] = 1.0  # overlaps the changed patch [3:7, 5:9]
    objects[:, :, 12, 12] = 1.0  # an unchanged object cell
    weight = _object_model(2.0, change_weight=4.0).change_weights(prev, target, objects)
    expected = np.ones((2, 1, 16, 16))
    expected[:, :, 3:7, 5:9] += 4.0
    expected[:, :, 4:6, 6:8] += 2.0
    expected[:, :, 12, 12] += 2.0
    np.testing.assert_array_equal(weight.numpy(), expected)  # type: ignore[union-attr]
    only_objects = _object_model(2.0).change_weights(prev, target, objects)
    np.testing.assert_array_equal(only_objects.numpy(), 1.0 + 2.0 * objects.numpy())  # type: ignore[union-attr]
    # without object cells (or with object_weight 0) the weights are change_weight's alone
    assert _object_model(2.0).change_weights(prev, target) is None
    assert _object_model(0.0).change_weights(prev, target, objects) is None


def test_dynamics_losses_use_the_object_weights() -> None:
    frames = _scene_frames(4)
    model = _object_model(5.0)
    ids = model.encode_actions(ACTIONS)
    losses = model.dynamics_loss(torch.from_numpy(frames), ids, torch.Generator().manual_seed(0))
    with torch.no_grad():
        z = model.encode_frames(torch.from_numpy(frames))
        states = model.backbone(z[:, :-1], ids).flatten(0, 1)
        pred = model.backbone.to_latent(states).numpy().astype(np.float64)
    nxt = z[:, 1:].flatten(0, 1).numpy()
    w = 1.0 + 5.0 * _numpy_object_cells(frames)[:, 1:].reshape(-1, 1, 16, 16)
    err = (pred - nxt) ** 2
    expected = (err * w).sum() / (w.sum() * err.shape[1])
    assert float(losses["latent"].detach()) == pytest.approx(expected, rel=1e-4)
    assert float(losses["latent"].detach()) != pytest.approx(err.mean(), rel=1e-3)
    # the diffusion loss is weighted too: the same draws without the weight give another value
    plain = _object_model(0.0).dynamics_loss(
        torch.from_numpy(frames), ids, torch.Generator().manual_seed(0)
    )
    assert float(plain["latent"].detach()) == pytest.approx(err.mean(), rel=1e-4)
    assert float(plain["diffusion"].detach()) != pytest.approx(
        float(losses["diffusion"].detach()), rel=1e-4
    )


def test_unrolled_losses_use_the_object_weights() -> None:
    frames = torch.from_numpy(_scene_frames(5, t=4))
    ids = _object_model(0.0).encode_actions([ACTIONS[0] + ["wait"]] * 2)
    runs = {
        w: _object_model(w).dynamics_loss(frames, ids, torch.Generator().manual_seed(0), unroll=1)
        for w in (0.0, 5.0)
    }
    plain, weighted = (float(runs[w]["unroll"].detach()) for w in (0.0, 5.0))
    assert plain != pytest.approx(weighted, rel=1e-4)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_bad_object_weight_is_refused(bad: float) -> None:
    with pytest.raises(ConfigError, match="object_weight >= 0"):
        dataclasses.replace(tiny_config(), object_weight=bad).validate()
