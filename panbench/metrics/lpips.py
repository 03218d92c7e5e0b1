"""LPIPS v0.1 (Zhang et al. 2018) on AlexNet or VGG16, implemented without torchvision.

The distance between two images is computed as in richzhang/PerceptualSimilarity (``lpips``
v0.1): inputs in ``[-1, 1]`` pass the ScalingLayer ``(x - shift) / scale``; the backbone's
activations at five ReLU taps are unit-normalised over channels
(``f / (sqrt(sum_c f^2) + 1e-10)``); the squared difference of the two images' normalised
activations is weighted per channel by the learned 1x1 linear head, averaged over space, and
the five layer scores are summed.

The linear heads are the v0.1 files that ship inside the torchmetrics wheel
(``torchmetrics/functional/image/lpips_models/{alex,vgg}.pth``, byte-identical to
PerceptualSimilarity's ``lpips/weights/v0.1``); the backbone is the torchvision ImageNet state
dict from the weights cache (``panbench weights pull alexnet`` / ``vgg16``), sha256-verified.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from panbench import weights
from panbench.errors import ConfigError, ContractError
from panbench.metrics._nets import BACKBONES, FeatureStack, build_backbone, load_features
from panbench.metrics.drift import PerStepMetric
from panbench.metrics.frame import _check_pair

__all__ = ["LPIPS", "LPIPSNet", "load_heads", "lpips", "lpips_video"]

Net = Literal["alex", "vgg"]
BackboneWeights = str | os.PathLike[str] | Mapping[str, Tensor] | None

# The LPIPS ScalingLayer: ImageNet mean/std expressed for inputs in [-1, 1].
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
_EPS = 1e-10
# frames per forward pass in video mode (fixed, so values do not depend on batch composition)
_CHUNK = 32

# sha256 of the v0.1 linear heads (torchmetrics wheel == PerceptualSimilarity lpips/weights/v0.1).
_HEAD_SHA256 = {
    "alex": "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
    "vgg": "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
}


def _head_file(net: str) -> Path:
    # find_spec locates the wheel without importing torchmetrics' image package (which probes
    # torchvision).
    spec = importlib.util.find_spec("torchmetrics")
    if spec is None or spec.origin is None:
        raise weights.WeightsError("torchmetrics is not installed; it ships the LPIPS heads.")
    return Path(spec.origin).parent / "functional" / "image" / "lpips_models" / f"{net}.pth"


def load_heads(net: str) -> list[Tensor]:
    """Loads and verifies the five v0.1 linear-head weight vectors for ``net``.

    Returns:
        Five float32 tensors ``[C_i]`` (non-negative channel weights).

    Raises:
        WeightsError: the file is missing from the torchmetrics wheel or its sha256 differs.
    """
    path = _head_file(net)
    if not path.is_file():
        raise weights.WeightsError(
            f"LPIPS v0.1 head weights not found at {path}; reinstall torchmetrics (>=1.4)."
        )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != _HEAD_SHA256[net]:
        raise weights.WeightsError(
            f"LPIPS head file {path} failed its sha256 check: expected {_HEAD_SHA256[net]}, "
            f"but got {digest}."
        )
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    return [state[f"lin{k}.model.1.weight"].reshape(-1).float() for k in range(5)]


class LPIPSNet(nn.Module):
    """The LPIPS v0.1 network: ScalingLayer, frozen backbone taps, unit-normalise, linear heads.

    Args:
        net: ``"alex"`` (default) or ``"vgg"``.
        backbone_weights: the backbone: ``None`` loads the verified file from the weights cache
            (or the ``PANBENCH_WEIGHTS_ALEXNET`` / ``PANBENCH_WEIGHTS_VGG16`` override); a path
            is a torchvision-format state dict checked against the same pinned sha256; a
            mapping is used as given (``features.*`` keys; ``classifier.*`` is ignored).

    Raises:
        ConfigError: unknown ``net`` or a state dict that does not fit it.
        WeightsError: the backbone or head file is missing or fails its sha256 check.
    """

    shift: Tensor
    scale: Tensor

    def __init__(self, net: Net = "alex", backbone_weights: BackboneWeights = None) -> None:
        super().__init__()
        if net not in BACKBONES:
            raise ConfigError(f"Expected net to be one of {sorted(BACKBONES)}, but got {net!r}.")
        self.net_name = net
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1), persistent=False)
        if backbone_weights is None or not isinstance(backbone_weights, Mapping):
            state = weights.load_state_dict(BACKBONES[net][0], backbone_weights)
        else:
            state = dict(backbone_weights)
        self.backbone: FeatureStack = load_features(build_backbone(net), state)
        self.heads = nn.ParameterList(nn.Parameter(w, requires_grad=False) for w in load_heads(net))
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> LPIPSNet:
        """Stays in eval mode: LPIPS is a fixed metric (no dropout at evaluation)."""
        return super().train(False)

    def forward(self, pred: Tensor, target: Tensor, normalize: bool = False) -> Tensor:
        """Per-pair LPIPS distances.

        Args:
            pred: float images ``[N, 3, H, W]`` in ``[-1, 1]`` (``[0, 1]`` with ``normalize``).
            target: float images of the same shape and range.
            normalize: inputs are in ``[0, 1]`` and are mapped to ``[-1, 1]`` first.

        Returns:
            float32 ``[N]``, one distance per pair (0 for identical images).
        """
        if normalize:
            pred, target = 2 * pred - 1, 2 * target - 1
        both = (torch.cat([pred, target]).float() - self.shift) / self.scale
        score = torch.zeros(pred.shape[0], device=pred.device, dtype=torch.float32)
        for feat, head in zip(self.backbone(both), self.heads, strict=True):
            unit = feat / (feat.pow(2).sum(dim=1, keepdim=True).sqrt() + _EPS)
            a, b = unit.chunk(2)
            weighted = ((a - b) ** 2 * head.view(1, -1, 1, 1)).sum(dim=1)
            score = score + weighted.mean(dim=(1, 2))
        return score


def _check_images(pred: Tensor, target: Tensor, normalize: bool) -> None:
    if not isinstance(pred, Tensor) or not isinstance(target, Tensor):
        raise ContractError(
            f"Expected pred and target to be tensors, but got {type(pred)} and {type(target)}."
        )
    if pred.shape != target.shape:
        raise ContractError(
            "Expected pred and target to have the same shape, but got "
            f"{tuple(pred.shape)} and {tuple(target.shape)}."
        )
    if pred.ndim != 4 or pred.shape[1] != 3:
        raise ContractError(f"Expected images of shape [N, 3, H, W], but got {tuple(pred.shape)}.")
    if not pred.is_floating_point() or not target.is_floating_point():
        raise ContractError(
            f"Expected float images, but got {pred.dtype} and {target.dtype}; convert uint8 "
            "frames with x.float() / 255 and pass normalize=True."
        )
    lo = 0.0 if normalize else -1.0
    for name, x in (("pred", pred), ("target", target)):
        if x.numel() and (x.min() < lo or x.max() > 1.0):
            raise ContractError(
                f"Expected {name} values in [{lo:g}, 1] (normalize={normalize}), but got "
                f"[{x.min().item():.4g}, {x.max().item():.4g}]."
            )


_NETS: dict[tuple[Any, ...], LPIPSNet] = {}


def _cached_net(net: Net, backbone_weights: BackboneWeights, device: torch.device) -> LPIPSNet:
    if isinstance(backbone_weights, Mapping):
        return LPIPSNet(net, backbone_weights).to(device)
    path = weights.resolve(BACKBONES[net][0], backbone_weights) if net in BACKBONES else None
    if path is None:
        raise ConfigError(f"Expected net to be one of {sorted(BACKBONES)}, but got {net!r}.")
    st = path.stat()
    key = (net, str(path.resolve()), st.st_size, st.st_mtime_ns, str(device))
    if key not in _NETS:
        _NETS.clear()  # keep at most one backbone (up to 500 MB) alive
        _NETS[key] = LPIPSNet(net, path).to(device)
    return _NETS[key]


def lpips(
    pred: Tensor,
    target: Tensor,
    net: Net = "alex",
    backbone_weights: BackboneWeights = None,
    normalize: bool = False,
) -> Tensor:
    """LPIPS v0.1 distance of each image pair.

    Args:
        pred: float images ``[N, 3, H, W]`` in ``[-1, 1]`` (``[0, 1]`` with ``normalize``).
        target: float images of the same shape and range.
        net: ``"alex"`` (default, the usual choice for evaluation) or ``"vgg"``.
        backbone_weights: see :class:`LPIPSNet`; default: the verified weights cache. The
            loaded network is kept for the next call with the same file.
        normalize: inputs are in ``[0, 1]``.

    Returns:
        float32 ``[N]`` on ``pred``'s device; lower means more similar; 0 for identical pairs.

    Raises:
        ContractError: shapes differ, are not ``[N, 3, H, W]``, are not float or out of range.
        WeightsError: the backbone is missing (run ``panbench weights pull alexnet``) or fails
            its sha256 check.

    Example:
        >>> import torch
        >>> from panbench.metrics._nets import random_torchvision_state_dict
        >>> backbone = random_torchvision_state_dict("alex", seed=0)  # stand-in for the real one
        >>> a = torch.rand(2, 3, 64, 64)
        >>> lpips(a, a, backbone_weights=backbone, normalize=True)
        tensor([0., 0.])
    """
    _check_images(pred, target, normalize)
    return _cached_net(net, backbone_weights, pred.device)(pred, target, normalize=normalize)


def _video_scores(net: LPIPSNet, preds: Any, target: Any, chunk: int = _CHUNK) -> Tensor:
    """Per-frame distances float64 ``[B, T]`` of panbench videos ``[B, T, H, W, C]``.

    Each episode runs on its own, in fixed chunks of frames, so a value never depends on the
    batch an episode arrived in.
    """
    p, t = _check_pair(preds, target)  # float64 [B, T, C, H, W] on [0, 1]
    if p.shape[2] == 1:
        p, t = p.expand(-1, -1, 3, -1, -1), t.expand(-1, -1, 3, -1, -1)
    device = net.shift.device
    out = torch.empty(p.shape[:2], dtype=torch.float64)
    for b in range(p.shape[0]):
        for s in range(0, p.shape[1], chunk):
            pair = (x[b, s : s + chunk].to(device, torch.float32) for x in (p, t))
            out[b, s : s + chunk] = net(*pair, normalize=True).double().cpu()
    return out


def lpips_video(
    preds: Any,
    target: Any,
    net: Net = "alex",
    backbone_weights: BackboneWeights = None,
) -> Tensor:
    """Per-frame LPIPS of predicted against true video, in panbench's frame layout.

    Args:
        preds: predicted frames ``[B, T, H, W, C]`` (C = 3 or 1, grey is repeated), uint8 in
            ``[0, 255]`` or float in ``[0, 1]``, numpy or torch.
        target: true frames, same shape.
        net: ``"alex"`` or ``"vgg"``.
        backbone_weights: see :class:`LPIPSNet`.

    Returns:
        float64 ``[B, T]``: the distance of each frame (lower is better).

    Raises:
        ContractError: wrong rank, layout, dtype, range or mismatched shapes.
        WeightsError: the backbone is missing or fails its sha256 check.

    Example:
        >>> import numpy as np
        >>> from panbench.metrics._nets import random_torchvision_state_dict
        >>> frames = np.zeros((1, 2, 32, 32, 3), dtype=np.uint8)
        >>> backbone = random_torchvision_state_dict("alex")
        >>> lpips_video(frames, frames, backbone_weights=backbone).tolist()
        [[0.0, 0.0]]
    """
    return _video_scores(_cached_net(net, backbone_weights, torch.device("cpu")), preds, target)


class LPIPS(PerStepMetric):
    """LPIPS v0.1 accumulated per step; ``compute()`` is the mean over all pairs (frames).

    ``update`` takes either panbench videos ``[B, T, H, W, C]`` (uint8 or float in ``[0, 1]``;
    see :func:`lpips_video`), giving one value per step and a drift curve (``curve()``), or
    image pairs ``[N, 3, H, W]`` in ``[-1, 1]`` (``[0, 1]`` with ``normalize``; see
    :func:`lpips`), counted as step 0. Use one kind per metric instance.

    Args:
        net: ``"alex"`` or ``"vgg"``.
        backbone_weights: see :class:`LPIPSNet`; the network is loaded once, here.
        normalize: image pairs are in ``[0, 1]`` (videos are always mapped from their dtype).
        horizon: optional number of steps to preallocate (see :class:`PerStepMetric`).
        **kwargs: passed to :class:`torchmetrics.Metric`.

    Example:
        >>> import torch
        >>> from panbench.metrics._nets import random_torchvision_state_dict
        >>> metric = LPIPS(backbone_weights=random_torchvision_state_dict("alex"), normalize=True)
        >>> x = torch.rand(4, 3, 64, 64)
        >>> metric.update(x, x)
        >>> metric.compute()
        tensor(0., dtype=torch.float64)
    """

    higher_is_better = False

    def __init__(
        self,
        net: Net = "alex",
        backbone_weights: BackboneWeights = None,
        normalize: bool = False,
        horizon: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(horizon=horizon, **kwargs)
        self.normalize = normalize
        self.net = LPIPSNet(net, backbone_weights)

    def update(self, preds: Any, target: Any) -> None:
        """Adds videos ``[B, T, H, W, C]`` or image pairs ``[N, 3, H, W]``."""
        if getattr(preds, "ndim", None) == 4:
            _check_images(preds, target, self.normalize)
            scores = self.net(preds, target, normalize=self.normalize)
            self._accumulate(scores.detach().double().unsqueeze(1))
        else:
            self._accumulate(_video_scores(self.net, preds, target))
