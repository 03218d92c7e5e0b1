"""PSNR and SSIM per frame against independent numpy/scipy references (and scikit-image)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.ndimage import correlate1d

from panbench.errors import ContractError
from panbench.metrics import PSNR, SSIM, psnr_video, ssim_video

RNG_SEED = 1234


def _videos(b: int = 3, t: int = 4, size: int = 24, noise: int = 30, seed: int = RNG_SEED):
    rng = np.random.default_rng(seed)
    target = rng.integers(0, 256, (b, t, size, size, 3), dtype=np.uint8)
    delta = rng.integers(-noise, noise + 1, target.shape)
    preds = np.clip(target.astype(np.int64) + delta, 0, 255).astype(np.uint8)
    return preds, target


def _ref_psnr(pred: np.ndarray, target: np.ndarray, cap: float = 100.0) -> float:
    """PSNR of one frame on [0, 1] data, as in common_metrics_on_video_quality."""
    mse = np.mean((pred.astype(np.float64) / 255 - target.astype(np.float64) / 255) ** 2)
    if mse < 1e-10:
        return cap
    return 20 * math.log10(1 / math.sqrt(mse))


def _gauss_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size) - (size - 1) / 2
    w = np.exp(-(x**2) / (2 * sigma**2))
    return w / w.sum()


def _ref_ssim_channel(x: np.ndarray, y: np.ndarray) -> float:
    """Wang et al. SSIM of one channel on [0, 1] data: gaussian 11/1.5, mean over the valid map."""
    w = _gauss_window()

    def filt(a: np.ndarray) -> np.ndarray:
        out = correlate1d(correlate1d(a, w, axis=0, mode="reflect"), w, axis=1, mode="reflect")
        return out[5:-5, 5:-5]  # valid region: the border never enters the mean

    c1, c2 = 0.01**2, 0.03**2
    mx, my = filt(x), filt(y)
    vx, vy, cxy = filt(x * x) - mx**2, filt(y * y) - my**2, filt(x * y) - mx * my
    num = (2 * mx * my + c1) * (2 * cxy + c2)
    den = (mx**2 + my**2 + c1) * (vx + vy + c2)
    return float(np.mean(num / den))


def _ref_ssim(pred: np.ndarray, target: np.ndarray) -> float:
    x, y = pred.astype(np.float64) / 255, target.astype(np.float64) / 255
    return float(np.mean([_ref_ssim_channel(x[..., c], y[..., c]) for c in range(x.shape[-1])]))


def _per_frame(ref, preds: np.ndarray, target: np.ndarray) -> np.ndarray:
    b, t = preds.shape[:2]
    return np.array([[ref(preds[i, j], target[i, j]) for j in range(t)] for i in range(b)])


def test_psnr_matches_reference_per_frame():
    preds, target = _videos()
    got = psnr_video(preds, target)
    assert got.shape == (3, 4) and got.dtype == torch.float64
    # torchmetrics converts 10 / ln(10) through a float32 tensor: relative error ~5e-8
    np.testing.assert_allclose(got.numpy(), _per_frame(_ref_psnr, preds, target), rtol=1e-7)


def test_ssim_matches_wang_reference_per_frame():
    preds, target = _videos()
    got = ssim_video(preds, target)
    assert got.shape == (3, 4)
    np.testing.assert_allclose(got.numpy(), _per_frame(_ref_ssim, preds, target), atol=1e-10)


def test_ssim_matches_skimage():
    metrics = pytest.importorskip("skimage.metrics")
    preds, target = _videos(b=1, t=2, size=32, noise=60)

    def ref(p: np.ndarray, t: np.ndarray) -> float:
        return metrics.structural_similarity(
            p.astype(np.float64) / 255,
            t.astype(np.float64) / 255,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=1.0,
            channel_axis=-1,
        )

    np.testing.assert_allclose(
        ssim_video(preds, target).numpy(), _per_frame(ref, preds, target), atol=1e-10
    )


def test_ssim_equals_torchmetrics_full_map_cropped_to_the_valid_region():
    from torchmetrics.functional.image import structural_similarity_index_measure

    preds, target = _videos(b=2, t=3, size=24, noise=40)
    got = ssim_video(preds, target).numpy()
    c = 5
    for i in range(preds.shape[0]):
        p = torch.from_numpy(preds[i]).permute(0, 3, 1, 2).double() / 255
        t = torch.from_numpy(target[i]).permute(0, 3, 1, 2).double() / 255
        _, full = structural_similarity_index_measure(
            p,
            t,
            gaussian_kernel=True,
            sigma=1.5,
            kernel_size=11,
            data_range=1.0,
            reduction="none",
            return_full_image=True,
        )
        want = full[..., c:-c, c:-c].reshape(p.shape[0], -1).mean(-1).numpy()
        np.testing.assert_allclose(got[i], want, rtol=0, atol=1e-12)


def test_psnr_is_per_image_not_pooled_mse():
    target = np.zeros((1, 2, 16, 16, 3), dtype=np.uint8)
    preds = target.copy()
    preds[0, 0] = 10  # small error on frame 0
    preds[0, 1] = 200  # large error on frame 1
    m = PSNR()
    m.update(preds, target)
    per_frame = psnr_video(preds, target)[0].numpy()
    pooled_mse = np.mean((preds / 255.0 - target / 255.0) ** 2)
    assert float(m.compute()) == pytest.approx(per_frame.mean())
    assert float(m.compute()) != pytest.approx(10 * math.log10(1 / pooled_mse))


def test_identical_frames_are_capped_at_100_db_or_inf_on_request():
    target = np.full((2, 3, 16, 16, 3), 77, dtype=np.uint8)
    assert torch.all(psnr_video(target, target) == 100.0)
    assert torch.all(torch.isinf(psnr_video(target, target, max_db=None)))
    np.testing.assert_allclose(ssim_video(target, target).numpy(), 1.0, rtol=0, atol=1e-12)


def test_uint8_and_float_inputs_agree():
    preds, target = _videos(b=2, t=2)
    pf, tf = torch.from_numpy(preds / 255.0), torch.from_numpy(target / 255.0)
    for fn in (psnr_video, ssim_video):
        ref = fn(preds, target)
        torch.testing.assert_close(fn(pf, tf), ref, rtol=0, atol=1e-12)
        # float32 input and mixed dtypes: only float32 rounding of the inputs separates them
        torch.testing.assert_close(fn(pf.float(), target), ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize("metric_cls,fn", [(PSNR, psnr_video), (SSIM, ssim_video)])
def test_classes_are_invariant_to_batch_splits(metric_cls, fn):
    preds, target = _videos(b=5, t=3)
    whole = metric_cls()
    whole.update(preds, target)
    split = metric_cls()
    for lo, hi in [(0, 2), (2, 3), (3, 5)]:
        split.update(preds[lo:hi], target[lo:hi])
    torch.testing.assert_close(split.compute(), whole.compute(), rtol=0, atol=1e-12)
    per_frame = fn(preds, target).numpy()
    np.testing.assert_allclose(split.curve().mean, per_frame.mean(axis=0), atol=1e-12)
    assert split.curve().n.tolist() == [5, 5, 5]
    assert float(whole.compute()) == pytest.approx(per_frame.mean())
    # an episode's values do not depend on the batch it came in
    torch.testing.assert_close(fn(preds[1:2], target[1:2])[0], fn(preds, target)[1], rtol=0, atol=0)


def test_forward_and_growing_horizon():
    preds, target = _videos(b=2, t=4)
    m = PSNR()
    batch_value = m(preds[:, :2], target[:, :2])  # forward: value of this batch only
    m.update(preds, target)
    ref = psnr_video(preds, target).numpy()
    assert float(batch_value) == pytest.approx(ref[:, :2].mean())
    assert m.curve().n.tolist() == [4, 4, 2, 2]
    np.testing.assert_allclose(m.curve().mean[2:], ref[:, 2:].mean(0), atol=1e-12)
    m.reset()
    with pytest.warns(UserWarning, match="before the ``update``"):
        assert math.isnan(float(m.compute()))
    assert m.curve().horizon == 0


def test_grayscale_single_channel():
    preds, target = _videos(b=1, t=2)
    g_p, g_t = preds[..., :1], target[..., :1]
    np.testing.assert_allclose(
        ssim_video(g_p, g_t).numpy(), _per_frame(_ref_ssim, g_p, g_t), atol=1e-10
    )


@pytest.mark.parametrize(
    "preds,target,match",
    [
        (np.zeros((2, 3, 16, 16, 3), np.uint8), np.zeros((2, 3, 16, 16, 3)), None),
        (
            np.zeros((2, 3, 16, 16, 3), np.uint8),
            np.zeros((2, 4, 16, 16, 3), np.uint8),
            "same shape",
        ),
        (
            np.zeros((2, 3, 3, 16, 16), np.uint8),
            np.zeros((2, 3, 3, 16, 16), np.uint8),
            "channels last",
        ),
        (
            np.zeros((3, 16, 16, 3), np.uint8),
            np.zeros((3, 16, 16, 3), np.uint8),
            r"\(3, 16, 16, 3\)",
        ),
        (np.full((1, 1, 16, 16, 3), 2.0), np.zeros((1, 1, 16, 16, 3)), r"in \[0, 1\]"),
        (np.zeros((1, 1, 16, 16, 3), np.int32), np.zeros((1, 1, 16, 16, 3), np.int32), "int32"),
    ],
)
def test_bad_inputs_say_what_was_received(preds, target, match):
    if match is None:  # uint8 against float zeros is valid
        assert torch.all(psnr_video(preds, target) == 100.0)
        return
    with pytest.raises(ContractError, match=match):
        psnr_video(preds, target)


def test_ssim_rejects_frames_smaller_than_the_window():
    x = np.zeros((1, 1, 8, 8, 3), np.uint8)
    with pytest.raises(ContractError, match="at least 11x11"):
        ssim_video(x, x)
