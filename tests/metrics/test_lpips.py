"""LPIPS against an independent plain-torch implementation, with random backbones saved by the test."""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from panbench import weights
from panbench.errors import ConfigError, ContractError
from panbench.metrics.lpips import LPIPS, lpips, lpips_video
from panbench.weights import WeightsEntry, WeightsError

# Layer plans written out from the AlexNet / VGG16 papers' torchvision layout:
# ("conv", stride, padding) | ("relu",) | ("pool", kernel, stride); "tap" marks LPIPS taps.
ALEX_PLAN = [
    ("conv", 4, 2), ("relu", "tap"), ("pool", 3, 2),
    ("conv", 1, 2), ("relu", "tap"), ("pool", 3, 2),
    ("conv", 1, 1), ("relu", "tap"),
    ("conv", 1, 1), ("relu", "tap"),
    ("conv", 1, 1), ("relu", "tap"),
]  # fmt: skip
ALEX_SHAPES = {
    0: (64, 3, 11),
    3: (192, 64, 5),
    6: (384, 192, 3),
    8: (256, 384, 3),
    10: (256, 256, 3),
}


def _vgg_plan() -> tuple[list[tuple], dict[int, tuple[int, int, int]]]:
    plan: list[tuple] = []
    shapes = {}
    c_in = 3
    for block, (c_out, convs) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]):
        for j in range(convs):
            shapes[len(plan)] = (c_out, c_in, 3)
            plan.append(("conv", 1, 1))
            plan.append(("relu", "tap") if j == convs - 1 else ("relu",))
            c_in = c_out
        if block < 4:
            plan.append(("pool", 2, 2))
    return plan, shapes


VGG_PLAN, VGG_SHAPES = _vgg_plan()
PLANS = {"alex": (ALEX_PLAN, ALEX_SHAPES), "vgg": (VGG_PLAN, VGG_SHAPES)}
HEADS_DIR = Path(importlib.util.find_spec("torchmetrics").origin).parent / (  # type: ignore[union-attr, arg-type]
    "functional/image/lpips_models"
)


def random_torchvision_backbone(net: str, seed: int) -> dict[str, torch.Tensor]:
    """A random state dict with torchvision's keys, including (small) classifier entries."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for index, (c_out, c_in, k) in PLANS[net][1].items():
        std = (2.0 / (c_in * k * k)) ** 0.5
        state[f"features.{index}.weight"] = torch.randn(c_out, c_in, k, k, generator=g) * std
        state[f"features.{index}.bias"] = torch.randn(c_out, generator=g) * 0.05
    # The loader must ignore the classifier; real shapes would be ~150 MB, so keep them tiny.
    state["classifier.1.weight"] = torch.randn(4, 8, generator=g)
    state["classifier.1.bias"] = torch.zeros(4)
    return state


def reference_lpips(
    x0: torch.Tensor, x1: torch.Tensor, state: dict[str, torch.Tensor], net: str
) -> torch.Tensor:
    """LPIPS v0.1 spelled out with functional ops in float64, following the paper's recipe."""
    heads = torch.load(HEADS_DIR / f"{net}.pth", map_location="cpu", weights_only=True)
    shift = torch.tensor([-0.030, -0.088, -0.188], dtype=torch.float64)[None, :, None, None]
    scale = torch.tensor([0.458, 0.448, 0.450], dtype=torch.float64)[None, :, None, None]

    def activations(x: torch.Tensor) -> list[torch.Tensor]:
        h = (x.double() - shift) / scale
        taps = []
        for index, op in enumerate(PLANS[net][0]):
            if op[0] == "conv":
                w = state[f"features.{index}.weight"].double()
                b = state[f"features.{index}.bias"].double()
                h = F.conv2d(h, w, b, stride=op[1], padding=op[2])
            elif op[0] == "relu":
                h = F.relu(h)
                if len(op) > 1:
                    taps.append(h)
            else:
                h = F.max_pool2d(h, kernel_size=op[1], stride=op[2])
        return taps

    total = torch.zeros(x0.shape[0], dtype=torch.float64)
    for layer, (f0, f1) in enumerate(zip(activations(x0), activations(x1), strict=True)):
        n0 = f0 / (torch.sqrt(torch.sum(f0**2, dim=1, keepdim=True)) + 1e-10)
        n1 = f1 / (torch.sqrt(torch.sum(f1**2, dim=1, keepdim=True)) + 1e-10)
        head = heads[f"lin{layer}.model.1.weight"].double()
        total += F.conv2d((n0 - n1) ** 2, head).mean(dim=[2, 3])[:, 0]
    return total


@pytest.fixture
def backbone_file(tmp_path: Path) -> Iterator[dict[str, tuple[Path, dict[str, torch.Tensor]]]]:
    """Random backbones saved as torchvision files and pinned in place of the real ones."""
    out = {}
    with contextlib.ExitStack() as stack:
        for seed, (net, name) in enumerate((("alex", "alexnet"), ("vgg", "vgg16")), start=1):
            state = random_torchvision_backbone(net, seed=seed)
            path = tmp_path / f"{name}-random.pth"
            torch.save(state, path)
            entry = WeightsEntry(
                name=name,
                filename=weights.get_entry(name).filename,
                description="random test backbone",
                licence="CC0-1.0",
                sha256=weights.sha256_file(path),
            )
            stack.enter_context(weights.registered(entry))
            out[net] = (path, state)
        yield out


@pytest.mark.parametrize(("net", "size"), [("alex", 64), ("vgg", 32)])
def test_matches_independent_implementation(
    backbone_file: dict[str, tuple[Path, dict[str, torch.Tensor]]], net: str, size: int
) -> None:
    path, state = backbone_file[net]
    g = torch.Generator().manual_seed(7)
    a = torch.rand(3, 3, size, size, generator=g) * 2 - 1
    b = (a + 0.3 * torch.randn(3, 3, size, size, generator=g)).clamp(-1, 1)
    got = lpips(a, b, net=net, backbone_weights=path)  # type: ignore[arg-type]
    want = reference_lpips(a, b, state, net)
    assert got.shape == (3,) and got.dtype == torch.float32
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-7)
    assert (got > 0).all()
    torch.testing.assert_close(lpips(b, a, net=net, backbone_weights=state), got)  # type: ignore[arg-type]
    assert torch.equal(lpips(a, a, net=net, backbone_weights=state), torch.zeros(3))  # type: ignore[arg-type]


def test_normalize_maps_unit_range(
    backbone_file: dict[str, tuple[Path, dict[str, torch.Tensor]]],
) -> None:
    _, state = backbone_file["alex"]
    a, b = torch.rand(2, 3, 48, 48), torch.rand(2, 3, 48, 48)
    torch.testing.assert_close(
        lpips(a, b, backbone_weights=state, normalize=True),
        lpips(2 * a - 1, 2 * b - 1, backbone_weights=state),
    )


def test_default_backbone_comes_from_verified_cache(
    backbone_file: dict[str, tuple[Path, dict[str, torch.Tensor]]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path, state = backbone_file["alex"]
    monkeypatch.setenv("PANBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PANBENCH_WEIGHTS_ALEXNET", raising=False)
    a, b = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    with pytest.raises(WeightsError, match="panbench weights pull alexnet"):
        lpips(a, b)
    monkeypatch.setenv("PANBENCH_WEIGHTS_ALEXNET", str(path))
    torch.testing.assert_close(lpips(a, b).double(), reference_lpips(a, b, state, "alex"))
    # A file that is not the pinned one is refused, showing both hashes.
    other = tmp_path / "other.pth"
    torch.save(random_torchvision_backbone("alex", seed=99), other)
    with pytest.raises(WeightsError) as err:
        lpips(a, b, backbone_weights=other)
    assert weights.sha256_file(other) in str(err.value)
    assert weights.get_entry("alexnet").pinned in str(err.value)


def test_metric_class_batches_and_steps(
    backbone_file: dict[str, tuple[Path, dict[str, torch.Tensor]]],
) -> None:
    _, state = backbone_file["alex"]
    g = torch.Generator().manual_seed(3)
    a, b = torch.rand(6, 3, 64, 64, generator=g), torch.rand(6, 3, 64, 64, generator=g)
    metric = LPIPS(backbone_weights=state, normalize=True)
    assert metric.higher_is_better is False
    metric.update(a[:2], b[:2])
    metric.update(a[2:], b[2:])
    expected = lpips(a, b, backbone_weights=state, normalize=True).double().mean()
    torch.testing.assert_close(metric.compute(), expected)

    # Videos in panbench's layout give a per-step curve equal to the per-frame functional.
    video_p = torch.randint(0, 256, (3, 4, 64, 64, 3), generator=g, dtype=torch.uint8)
    video_t = torch.randint(0, 256, (3, 4, 64, 64, 3), generator=g, dtype=torch.uint8)
    per_frame = lpips_video(video_p, video_t, backbone_weights=state)
    assert per_frame.shape == (3, 4) and per_frame.dtype == torch.float64
    flat = lambda v: v.flatten(0, 1).permute(0, 3, 1, 2).float() / 255  # noqa: E731
    direct = lpips(flat(video_p), flat(video_t), backbone_weights=state, normalize=True)
    torch.testing.assert_close(per_frame.flatten().float(), direct)
    video_metric = LPIPS(backbone_weights=state)
    video_metric.update(video_p[:1], video_t[:1])
    video_metric.update(video_p[1:].numpy(), video_t[1:].numpy())
    np.testing.assert_allclose(video_metric.curve().mean, per_frame.mean(0).numpy(), rtol=1e-6)
    # An episode's values do not depend on the batch it came in.
    torch.testing.assert_close(
        lpips_video(video_p[1:2], video_t[1:2], backbone_weights=state), per_frame[1:2]
    )


def test_bad_inputs_are_refused(
    backbone_file: dict[str, tuple[Path, dict[str, torch.Tensor]]],
) -> None:
    _, state = backbone_file["alex"]
    a = torch.zeros(2, 3, 64, 64)
    with pytest.raises(ContractError, match=r"same shape, but got \(2, 3, 64, 64\) and"):
        lpips(a, torch.zeros(2, 3, 32, 32), backbone_weights=state)
    with pytest.raises(ContractError, match=r"\[N, 3, H, W\]"):
        lpips(torch.zeros(2, 1, 64, 64), torch.zeros(2, 1, 64, 64), backbone_weights=state)
    with pytest.raises(ContractError, match="float"):
        lpips(a.to(torch.uint8), a.to(torch.uint8), backbone_weights=state)
    with pytest.raises(ContractError, match=r"values in \[0, 1\]"):
        lpips(a - 0.5, a, backbone_weights=state, normalize=True)
    with pytest.raises(ConfigError, match="net"):
        lpips(a, a, net="squeeze", backbone_weights=state)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="does not fit"):
        lpips(a, a, net="vgg", backbone_weights=state)
    with pytest.raises(ConfigError, match="features"):
        lpips(a, a, backbone_weights={"weight": torch.zeros(1)})


def test_same_as_the_lpips_package() -> None:
    """Against richzhang's `lpips` (random backbone copied across); only where it imports."""
    if importlib.util.find_spec("torchvision") is None or importlib.util.find_spec("lpips") is None:
        pytest.skip("needs the lpips package and torchvision")
    lpips_pkg = pytest.importorskip("lpips")
    for net in ("alex", "vgg"):
        ref = lpips_pkg.LPIPS(net=net, pnet_rand=True, verbose=False).eval()
        state = {}
        for (
            name,
            tensor,
        ) in ref.net.state_dict().items():  # "slice1.0.weight" -> "features.0.weight"
            _, index, kind = name.split(".")
            state[f"features.{index}.{kind}"] = tensor
        a, b = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
        with torch.no_grad():
            want = ref(a, b).flatten()
        torch.testing.assert_close(lpips(a, b, net=net, backbone_weights=state), want)  # type: ignore[arg-type]
