"""FVD: Fréchet distance against scipy, and the StyleGAN-V pipeline through a scripted stand-in I3D."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F

from panbench import weights
from panbench.errors import ContractError
from panbench.metrics.fvd import (
    FVD,
    RankDeficientWarning,
    feature_stats,
    frechet_distance,
    fvd,
    fvd_curve,
)
from panbench.weights import WeightsEntry, WeightsError


def scipy_frechet(a: np.ndarray, b: np.ndarray) -> float:
    """The textbook formula with numpy's biased covariance and scipy's sqrtm."""
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    s_a = np.cov(a, rowvar=False, bias=True)
    s_b = np.cov(b, rowvar=False, bias=True)
    root = scipy.linalg.sqrtm(s_a.dot(s_b))
    return float(np.real(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b))) - float(
        2 * np.real(np.trace(root))
    )


def eig_frechet(a: np.ndarray, b: np.ndarray) -> float:
    """Same distance by another route: tr sqrt(S_a S_b) = sum sqrt(eig(R S_b R)), R = S_a^1/2."""
    s_a = np.cov(a, rowvar=False, bias=True)
    s_b = np.cov(b, rowvar=False, bias=True)
    w, v = np.linalg.eigh(s_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    lam = np.linalg.eigvalsh(root_a @ s_b @ root_a)
    mean = ((a.mean(0) - b.mean(0)) ** 2).sum()
    return float(mean + np.trace(s_a) + np.trace(s_b) - 2 * np.sqrt(np.clip(lam, 0, None)).sum())


def test_frechet_distance_matches_scipy_full_rank() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(300, 16)) @ rng.normal(size=(16, 16))
    b = rng.normal(size=(250, 16)) * 1.5 + 0.4
    got = frechet_distance(a, b)
    assert got == pytest.approx(scipy_frechet(a, b), rel=1e-6)
    assert got == pytest.approx(eig_frechet(a, b), rel=1e-6)
    assert frechet_distance(torch.from_numpy(a).float(), b) == pytest.approx(got, rel=1e-5)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_rank_deficient_warns_and_matches() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=(20, 64))
    b = rng.normal(size=(30, 64)) + 0.1
    with pytest.warns(RankDeficientWarning, match="rank at most 19 < 64"):
        got = frechet_distance(a, b)
    assert got == pytest.approx(scipy_frechet(a, b), rel=1e-6)
    # Exactly rank-deficient features (a 3-d subspace of 10-d) with N > D: no warning.
    basis = rng.normal(size=(3, 10))
    c, d = rng.normal(size=(200, 3)) @ basis, rng.normal(size=(150, 3)) @ basis + 0.2
    with warnings.catch_warnings():
        warnings.simplefilter("error", RankDeficientWarning)
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        assert frechet_distance(c, d) == pytest.approx(scipy_frechet(c, d), rel=1e-6)


def test_feature_stats_use_the_biased_estimator() -> None:
    x = np.random.default_rng(2).normal(size=(7, 3))
    mu, sigma = feature_stats(x)
    np.testing.assert_allclose(mu, x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(x, rowvar=False, bias=True), rtol=1e-10, atol=1e-12)
    assert not np.allclose(sigma, np.cov(x, rowvar=False))
    with pytest.raises(ContractError, match="same dimension"):
        frechet_distance(x, x[:, :2])


class StandInI3D(torch.nn.Module):
    """A detector with I3D's call signature that insists on StyleGAN-V's input convention."""

    def __init__(self, clip_length: int, dim: int) -> None:
        super().__init__()
        self.clip_length = clip_length
        g = torch.Generator().manual_seed(0)
        self.proj = torch.nn.Parameter(torch.randn(3 * 2 * 4 * 4, dim, generator=g) / 4)

    def forward(
        self,
        x: torch.Tensor,
        rescale: bool = False,
        resize: bool = False,
        return_features: bool = False,
    ) -> torch.Tensor:
        if x.dtype != torch.uint8:
            raise RuntimeError("expected uint8 clips")
        if x.dim() != 5 or x.shape[1] != 3 or x.shape[2] != self.clip_length:
            raise RuntimeError("expected [B, 3, T, H, W] clips of clip_length frames")
        if not (rescale and resize and return_features):
            raise RuntimeError("expected rescale=True, resize=True, return_features=True")
        h = x.float() / 127.5 - 1.0
        h = F.interpolate(h, size=[x.shape[2], 16, 16], mode="trilinear", align_corners=False)
        pooled = F.adaptive_avg_pool3d(h, [2, 4, 4]).flatten(1)
        return torch.tanh(pooled @ self.proj) * 3


def save_stand_in(module: StandInI3D, path: Path) -> WeightsEntry:
    """Scripts ``module`` to ``path`` and returns an i3d-torchscript entry pinning its sha256."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(module).save(str(path))
    return WeightsEntry(
        name="i3d-torchscript",
        filename="i3d_torchscript.pt",
        description="scripted stand-in",
        licence="CC0-1.0",
        sha256=weights.sha256_file(path),
    )


@pytest.fixture
def scripted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StandInI3D]:
    """Saves a scripted stand-in, pins its sha256 as i3d-torchscript and points the env var at it."""
    module = StandInI3D(clip_length=8, dim=6)
    path = tmp_path / "standin_i3d.pt"
    entry = save_stand_in(module, path)
    monkeypatch.setenv("PANBENCH_WEIGHTS_I3D_TORCHSCRIPT", str(path))
    with weights.registered(entry):
        yield module


def reference_fvd(
    videos_a: np.ndarray, videos_b: np.ndarray, module: StandInI3D, start: int, length: int
) -> float:
    """Independent pipeline: quantise [0, 1] floats, cut the clip, NCTHW uint8, scipy distance."""
    feats = []
    for v in (videos_a, videos_b):
        clip = v[:, start : start + length]
        if clip.dtype != np.uint8:
            clip = np.floor(clip * 255 + 0.5).clip(0, 255).astype(np.uint8)
        x = torch.from_numpy(np.ascontiguousarray(clip.transpose(0, 4, 1, 2, 3)))
        with torch.no_grad():
            feats.append(
                module(x, rescale=True, resize=True, return_features=True).double().numpy()
            )
    return scipy_frechet(*feats)


def _videos(seed: int, n: int, t: int = 20, brightness: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.random((n, 1, 12, 12, 3)) * 0.6 + brightness
    drift = np.linspace(0, 0.3, t)[None, :, None, None, None] * rng.random((n, 1, 1, 1, 3))
    return np.clip(base + drift, 0, 1).astype(np.float32)


def test_fvd_end_to_end_through_the_pinned_detector(scripted: StandInI3D) -> None:
    a, b = _videos(0, 24), _videos(1, 20, brightness=0.2)
    got = fvd(a, b, clip_length=8)  # loads the scripted file via the env override + sha256
    assert got == pytest.approx(reference_fvd(a, b, scripted, 0, 8), rel=1e-6)
    assert got > 0
    assert fvd(a, a, clip_length=8) == pytest.approx(0.0, abs=1e-6)

    # uint8 frames and the float frames they quantise to give the same FVD.
    a8 = np.floor(a * 255 + 0.5).astype(np.uint8)
    assert fvd(a8, b, scripted, clip_length=8) == pytest.approx(got, rel=1e-9)
    # The [N, T, C, H, W] layout is the same data.
    a_tchw, b_tchw = a.transpose(0, 1, 4, 2, 3), b.transpose(0, 1, 4, 2, 3)
    assert fvd(a_tchw, b_tchw, scripted, clip_length=8, layout="tchw") == pytest.approx(got)
    # Grey frames are repeated to three channels.
    grey = a[..., :1]
    assert fvd(grey, b, scripted, clip_length=8) == pytest.approx(
        fvd(np.repeat(grey, 3, axis=-1), b, scripted, clip_length=8), rel=1e-9
    )
    # Later clips are cut at the offset.
    assert fvd(a, b, scripted, clip_length=8, offset=5) == pytest.approx(
        reference_fvd(a, b, scripted, 5, 8), rel=1e-6
    )


def test_fvd_class_accumulates_across_batches(scripted: StandInI3D) -> None:
    a, b = _videos(2, 30), _videos(3, 26, brightness=0.1)
    metric = FVD(clip_length=8, feature_dim=6, batch_size=4)
    assert metric.higher_is_better is False
    for lo, hi in ((0, 7), (7, 19), (19, 30)):
        metric.update(torch.from_numpy(a[lo:hi]), b[lo:hi] if lo < 26 else b[:0])
    want = fvd(a, b, scripted, clip_length=8)
    # rel 1e-6, not exact: float32 detector output varies slightly with the batch size.
    assert float(metric.compute()) == pytest.approx(want, rel=1e-6)
    assert int(metric.n_pred) == 30 and int(metric.n_target) == 26
    metric.reset()
    with pytest.warns(UserWarning, match="before the ``update``"):  # torchmetrics' own notice
        assert torch.isnan(metric.compute())


def test_fvd_curve_over_horizon_windows(scripted: StandInI3D) -> None:
    a, b = _videos(4, 16, t=30), _videos(5, 16, t=26, brightness=0.15)
    curve = fvd_curve(a, b, scripted, clip_length=8, stride=6)
    assert list(curve) == [0, 6, 12, 18]  # windows must fit in the shorter set (26 frames)
    for start, value in curve.items():
        assert value == pytest.approx(reference_fvd(a, b, scripted, start, 8), rel=1e-6)
    assert list(fvd_curve(a, b, scripted, clip_length=8)) == [0, 8, 16]


def test_small_sets_warn(scripted: StandInI3D) -> None:
    big = StandInI3D(clip_length=8, dim=400)
    a, b = _videos(6, 10), _videos(7, 10)
    with pytest.warns(RankDeficientWarning, match="rank at most 9 < 400"):
        fvd(a, b, big, clip_length=8)
    metric = FVD(detector=StandInI3D(clip_length=8, dim=40), clip_length=8, feature_dim=40)
    metric.update(a, b)
    with pytest.warns(RankDeficientWarning, match="rank at most 9 < 40"):
        metric.compute()


def test_bad_videos_are_refused(scripted: StandInI3D) -> None:
    a = _videos(8, 4, t=6)
    with pytest.raises(ContractError, match="at least 8 frames"):
        fvd(a, a, scripted, clip_length=8)
    with pytest.raises(ContractError, match=r"in \[0, 1\]"):
        fvd(a * 2, a, scripted, clip_length=4)
    with pytest.raises(ContractError, match="5 dims"):
        fvd(a[0], a[0], scripted)
    with pytest.raises(ContractError, match="channels"):
        fvd(a[..., :2], a[..., :2], scripted, clip_length=4)


def test_missing_detector_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PANBENCH_HOME", str(tmp_path))
    monkeypatch.delenv("PANBENCH_WEIGHTS_I3D_TORCHSCRIPT", raising=False)
    a = _videos(9, 2, t=16)
    with pytest.raises(WeightsError) as err:
        fvd(a, a)
    assert "panbench weights pull i3d-torchscript" in str(err.value)
    assert str(tmp_path / "weights" / "i3d_torchscript.pt") in str(err.value)


@pytest.mark.weights
def test_reproduces_published_stylegan_v_value() -> None:
    """common_metrics_on_video_quality (StyleGAN-V I3D): 8 zero vs 8 one videos [8,30,3,64,64]."""
    try:
        weights.resolve("i3d-torchscript")
    except WeightsError as err:
        pytest.skip(f"real I3D not in the cache: {err}")
    zeros = torch.zeros(8, 30, 3, 64, 64)
    ones = torch.ones(8, 30, 3, 64, 64)
    with contextlib.suppress(Warning), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = fvd(zeros, ones, clip_length=30, layout="tchw")
    assert value == pytest.approx(151.256, rel=1e-3)
