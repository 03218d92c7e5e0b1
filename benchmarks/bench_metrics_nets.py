"""Throughput of the network metrics on CPU: LPIPS (alex, vgg) and the FVD pipeline.

Random weights stand in for the pretrained files (which are not downloaded here): the cost of a
network does not depend on its weight values. The FVD detector is a random-weight Inception-v1
I3D with the published layer sizes (Carreira & Zisserman 2017; 400 outputs), built here, run
exactly as the real TorchScript file is called: uint8 clips [B, 3, 16, H, W], rescaled to [-1, 1]
and resized to 224x224 inside the detector.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from panbench.metrics._nets import random_torchvision_state_dict
from panbench.metrics.fvd import i3d_features, to_detector_clips
from panbench.metrics.lpips import LPIPSNet

BENCH = "metrics_nets"


class _Unit(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, k: tuple[int, int, int], s: int = 1) -> None:
        pad = tuple(x // 2 for x in k)
        super().__init__(
            nn.Conv3d(c_in, c_out, k, stride=s, padding=pad, bias=False),
            nn.BatchNorm3d(c_out, eps=1e-3),
            nn.ReLU(),
        )


class _Mixed(nn.Module):
    def __init__(self, c_in: int, c: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        one = (1, 1, 1)
        self.b0 = _Unit(c_in, c[0], one)
        self.b1 = nn.Sequential(_Unit(c_in, c[1], one), _Unit(c[1], c[2], (3, 3, 3)))
        self.b2 = nn.Sequential(_Unit(c_in, c[3], one), _Unit(c[3], c[4], (3, 3, 3)))
        self.b3 = nn.Sequential(nn.MaxPool3d(3, 1, 1), _Unit(c_in, c[5], one))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1(x), self.b2(x), self.b3(x)], dim=1)


class RandomI3D(nn.Module):
    """Inception-v1 I3D layer sizes with random weights, called like the StyleGAN-V detector."""

    def __init__(self) -> None:
        super().__init__()
        mixed = [
            (192, (64, 96, 128, 16, 32, 32)),
            (256, (128, 128, 192, 32, 96, 64)),
            "pool",
            (480, (192, 96, 208, 16, 48, 64)),
            (512, (160, 112, 224, 24, 64, 64)),
            (512, (128, 128, 256, 24, 64, 64)),
            (512, (112, 144, 288, 32, 64, 64)),
            (528, (256, 160, 320, 32, 128, 128)),
            "pool2",
            (832, (256, 160, 320, 32, 128, 128)),
            (832, (384, 192, 384, 48, 128, 128)),
        ]
        layers: list[nn.Module] = [
            _Unit(3, 64, (7, 7, 7), s=2),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
            _Unit(64, 64, (1, 1, 1)),
            _Unit(64, 192, (3, 3, 3)),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
        ]
        for item in mixed:
            if item == "pool":
                layers.append(nn.MaxPool3d(3, 2, 1))
            elif item == "pool2":
                layers.append(nn.MaxPool3d(2, 2))
            else:
                c_in, c = item  # type: ignore[misc]
                layers.append(_Mixed(c_in, c))
        self.features = nn.Sequential(*layers)
        self.logits = nn.Conv3d(1024, 400, 1)
        self.eval()

    def forward(
        self,
        x: torch.Tensor,
        rescale: bool = False,
        resize: bool = False,
        return_features: bool = False,
    ) -> torch.Tensor:
        h = x.float()
        if rescale:
            h = h / 127.5 - 1
        if resize:
            h = F.interpolate(h, size=(h.shape[2], 224, 224), mode="trilinear", align_corners=False)
        h = self.features(h)
        h = F.adaptive_avg_pool3d(h, (h.shape[2], 1, 1))
        return self.logits(h).mean(dim=(2, 3, 4))


def _rate(fn: Any, items: int, repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return items * repeats / (time.perf_counter() - start)


@torch.no_grad()
def run(quick: bool) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    g = torch.Generator().manual_seed(0)
    threads = torch.get_num_threads()
    for net, batch in (("alex", 32), ("vgg", 8)):
        model = LPIPSNet(net, random_torchvision_state_dict(net))  # type: ignore[arg-type]
        a = torch.rand(batch, 3, 64, 64, generator=g) * 2 - 1
        b = torch.rand(batch, 3, 64, 64, generator=g) * 2 - 1
        rows.append(
            {
                "bench": BENCH,
                "case": f"lpips {net} 64x64",
                "value": _rate(lambda m=model, a=a, b=b: m(a, b), batch, 2 if quick else 10),
                "unit": "pairs/s",
                "target": ">= 200" if net == "alex" else ">= 20",
                "notes": f"batch {batch}, random backbone, {threads} threads",
            }
        )

    detector = RandomI3D()
    n_clips = 2 if quick else 8
    videos = np.random.default_rng(0).integers(0, 256, (n_clips, 16, 64, 64, 3), dtype=np.uint8)

    def pipeline() -> None:
        i3d_features(to_detector_clips(videos, 16), detector, batch_size=n_clips)

    rows.append(
        {
            "bench": BENCH,
            "case": "fvd features 16x64x64 -> I3D 224",
            "value": _rate(pipeline, n_clips, 1 if quick else 2),
            "unit": "clips/s",
            "target": ">= 0.5",
            "notes": f"random-weight Inception-v1 I3D (same layer sizes), {threads} threads",
        }
    )
    return rows


if __name__ == "__main__":
    for row in run(quick=True):
        print(row)
