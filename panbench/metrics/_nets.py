"""AlexNet and VGG16 convolutional feature stacks with torchvision's layer layout, without torchvision.

The modules' parameter names match torchvision's ``features.<index>.weight`` / ``.bias`` keys, so
a full torchvision state dict (``features.*`` and ``classifier.*``) loads after dropping the
classifier. Only the convolutional part is built: perceptual metrics never use the classifier.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from panbench.errors import ConfigError

__all__ = [
    "BACKBONES",
    "FeatureStack",
    "build_backbone",
    "features_state_dict",
    "load_features",
    "random_torchvision_state_dict",
]

# name -> (weights-registry entry, per-layer channel counts at the taps)
BACKBONES: dict[str, tuple[str, tuple[int, ...]]] = {
    "alex": ("alexnet", (64, 192, 384, 256, 256)),
    "vgg": ("vgg16", (64, 128, 256, 512, 512)),
}


class FeatureStack(nn.Module):
    """A ``features`` Sequential that returns the activations after the given layer indices.

    Args:
        features: the layers, indexed like torchvision's ``model.features``.
        taps: indices of the layers whose outputs are returned, ascending.
    """

    def __init__(self, features: nn.Sequential, taps: tuple[int, ...]) -> None:
        super().__init__()
        if list(taps) != sorted(set(taps)) or not taps or taps[-1] >= len(features):
            raise ConfigError(f"Expected ascending tap indices below {len(features)}, got {taps}.")
        self.features = features
        self.taps = tuple(taps)

    def forward(self, x: Tensor) -> list[Tensor]:
        """Runs the stack up to the last tap.

        Args:
            x: float images ``[N, 3, H, W]``.

        Returns:
            One tensor ``[N, C_i, H_i, W_i]`` per tap.
        """
        outs: list[Tensor] = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.taps:
                outs.append(x)
                if index == self.taps[-1]:
                    break
        return outs


def _alexnet_features() -> nn.Sequential:
    # torchvision.models.alexnet().features; ReLUs are not in-place so tapped outputs stay intact.
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.Conv2d(384, 256, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.Conv2d(256, 256, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
    )


# VGG configuration "D" (16 weight layers): channel counts, "M" = 2x2 max-pool.
_VGG16_CFG: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M",
)  # fmt: skip


def _vgg16_features() -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = 3
    for item in _VGG16_CFG:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            out = int(item)
            layers += [nn.Conv2d(channels, out, kernel_size=3, padding=1), nn.ReLU()]
            channels = out
    return nn.Sequential(*layers)


def build_backbone(net: str) -> FeatureStack:
    """Builds the randomly initialised LPIPS feature stack for ``net``.

    Args:
        net: ``"alex"`` (taps relu1..relu5, after ``features`` 1, 4, 7, 9, 11) or ``"vgg"``
            (taps relu1_2, relu2_2, relu3_3, relu4_3, relu5_3, after 3, 8, 15, 22, 29).

    Raises:
        ConfigError: ``net`` is not one of them.
    """
    if net == "alex":
        return FeatureStack(_alexnet_features(), (1, 4, 7, 9, 11))
    if net == "vgg":
        return FeatureStack(_vgg16_features(), (3, 8, 15, 22, 29))
    raise ConfigError(f"Expected net to be one of {sorted(BACKBONES)}, but got {net!r}.")


def features_state_dict(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Keeps the ``features.*`` entries of a torchvision state dict (drops ``classifier.*``).

    Raises:
        ConfigError: the mapping has no ``features.*`` keys (not a torchvision-format dict).
    """
    kept = {k: v for k, v in state.items() if k.startswith("features.")}
    if not kept:
        sample = ", ".join(list(state)[:4])
        raise ConfigError(
            "Expected a torchvision-format state dict with 'features.*' keys, "
            f"but got keys like: {sample or '(none)'}."
        )
    return kept


def load_features(stack: FeatureStack, state: Mapping[str, Tensor]) -> FeatureStack:
    """Loads the ``features.*`` weights of a torchvision state dict into ``stack`` (strict).

    Raises:
        ConfigError: keys or shapes do not match the stack (e.g. an AlexNet dict for VGG).
    """
    try:
        stack.load_state_dict(features_state_dict(state), strict=True)
    except RuntimeError as err:
        raise ConfigError(f"The backbone state dict does not fit this network: {err}") from err
    return stack


@torch.no_grad()
def random_torchvision_state_dict(net: str, seed: int = 0) -> dict[str, Tensor]:
    """A seeded random ``features.*`` state dict in torchvision format (tests and benches)."""
    generator = torch.Generator().manual_seed(seed)
    stack = build_backbone(net)
    out = {}
    for key, value in stack.state_dict().items():
        fan_in = value[0].numel() if value.ndim > 1 else 1
        scale = (2.0 / fan_in) ** 0.5 if value.ndim > 1 else 0.01
        out[key] = torch.randn(value.shape, generator=generator) * scale
    return out
