"""SEA-RAFT optical flow (Wang, Lipson and Deng, ECCV 2024) in plain torch, for WR-Arena smoothness.

WR-Arena computes its smoothness flow with SEA-RAFT (``thirdparty/SEA-RAFT`` in
MBZUAI-IFM/WR-Arena, BSD-3-Clause upstream) in the ``spring-M`` configuration
(``config/eval/spring-M.json``) and the checkpoint ``Tartan-C-T-TSKH-spring540x960-M.pth``. This
module re-implements the inference path of that network so the checkpoint's state dict loads
into it by name (no torchvision, no upstream code imported), and wraps it as a panbench
:class:`~panbench.metrics.flow.FlowEstimator` that follows WR-Arena's
``RaftFlowEstimator.compute_flow`` (``smoothness_eval_scripts/compute_smoothness_scores.py``):

1. RGB frames as float in [0, 255] (upstream decodes BGR with OpenCV and converts to RGB);
2. both frames resized by ``2 ** scale`` with bilinear interpolation (``scale = -1``: half size);
3. the network with ``iters = 4`` refinement steps in test mode; the last flow is taken;
4. the flow resized back by bilinear interpolation and multiplied by ``2 ** -scale``.

The network: a ResNet-34-style FPN context encoder on both frames stacked (6 channels) and a
feature encoder on each frame, both at 1/8 resolution; inputs mapped to [-1, 1] and
replicate-padded to a multiple of 8 (centred); an initial flow from the context features; a
4-level all-pairs correlation pyramid (``fmap1 . fmap2 / sqrt(C)``, with fmap2 halved by
bilinear interpolation per level) sampled in a (2r+1)^2 window (r = 4) around the current
estimate; ConvNeXt update blocks; convex 8x upsampling with 3x3 softmax weights.

The checkpoint's sha256 is not yet pinned by panbench (it could not be downloaded where this was
written). Until it is, pass ``sha256=`` (your ``sha256sum`` of the file) with ``path=`` or the
cache copy; see :class:`SeaRaftFlow`.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from panbench import weights
from panbench.errors import ConfigError, ContractError
from panbench.metrics.flow import check_frame

__all__ = [
    "SEA_RAFT_FILENAME",
    "SEA_RAFT_URL",
    "SEA_RAFT_WEIGHTS",
    "SeaRaft",
    "SeaRaftConfig",
    "SeaRaftFlow",
    "sea_raft_weights_entry",
]

#: weights registry name of the spring-M checkpoint WR-Arena uses
SEA_RAFT_WEIGHTS = "sea-raft-spring-m"
SEA_RAFT_FILENAME = "Tartan-C-T-TSKH-spring540x960-M.pth"
#: where WR-Arena's thirdparty/SEA-RAFT/checkpoints/README.md downloads it from
SEA_RAFT_URL = f"https://huggingface.co/datasets/memcpy/SEA-RAFT/resolve/main/{SEA_RAFT_FILENAME}"


@dataclass(frozen=True)
class SeaRaftConfig:
    """Network and inference settings; the defaults are WR-Arena's ``spring-M.json``.

    Attributes:
        dim: hidden and context channels (context encoder outputs ``2 * dim``).
        radius: correlation lookup radius r (a (2r+1)^2 window per level).
        corr_levels: levels of the correlation pyramid (fixed to 4 upstream).
        num_blocks: ConvNeXt blocks in the update block.
        initial_dim: channels of the encoders' stem.
        block_dims: channels of the encoders' three stages (1/2, 1/4, 1/8 resolution).
        stage_blocks: residual blocks per stage: (3, 4, 6) is upstream's ``resnet34``,
            (2, 2, 2) its ``resnet18``.
        iters: refinement iterations at inference.
        scale: frames are resized by ``2 ** scale`` before the network (-1: half size).
    """

    dim: int = 128
    radius: int = 4
    corr_levels: int = 4
    num_blocks: int = 2
    initial_dim: int = 64
    block_dims: tuple[int, int, int] = (64, 128, 256)
    stage_blocks: tuple[int, int, int] = (3, 4, 6)
    iters: int = 4
    scale: int = -1

    def __post_init__(self) -> None:
        for name in ("dim", "radius", "corr_levels", "num_blocks", "initial_dim"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"Expected {name} to be a positive int, but got {value!r}.")
        if self.dim % 2:
            raise ConfigError(f"Expected an even dim, but got {self.dim}.")
        if isinstance(self.iters, bool) or not isinstance(self.iters, int) or self.iters < 1:
            raise ConfigError(f"Expected iters to be a positive int, but got {self.iters!r}.")
        if isinstance(self.scale, bool) or not isinstance(self.scale, int) or self.scale > 0:
            raise ConfigError(f"Expected scale to be an int <= 0, but got {self.scale!r}.")
        if len(self.block_dims) != 3 or len(self.stage_blocks) != 3:
            raise ConfigError("Expected three block_dims and three stage_blocks.")

    @property
    def corr_channels(self) -> int:
        return self.corr_levels * (2 * self.radius + 1) ** 2


class _ResidualBlock(nn.Module):
    """Two 3x3 conv + BN + ReLU with an identity or 1x1-conv shortcut."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(cout)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Sequential | None = None
        if stride != 1 or cin != cout:
            # The shortcut's BN is reachable both as bn3 and as downsample.1, so the state dict
            # carries it under both names, as the published checkpoint does.
            self.bn3 = nn.BatchNorm2d(cout)
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride), self.bn3)

    def forward(self, x: Tensor) -> Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(shortcut + y)


class _Encoder(nn.Module):
    """ResNet stem and three stages down to 1/8 resolution, then a 1x1 projection."""

    def __init__(self, cfg: SeaRaftConfig, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cfg.initial_dim, 7, stride=2, padding=3)
        self.bn1 = nn.BatchNorm2d(cfg.initial_dim)
        self.relu = nn.ReLU(inplace=True)
        width = cfg.initial_dim
        stages = []
        for dims, count, stride in zip(cfg.block_dims, cfg.stage_blocks, (1, 2, 2), strict=True):
            blocks = [_ResidualBlock(width, dims, stride)]
            blocks += [_ResidualBlock(dims, dims, 1) for _ in range(count - 1)]
            stages.append(nn.Sequential(*blocks))
            width = dims
        self.layer1, self.layer2, self.layer3 = stages
        self.final_conv = nn.Conv2d(width, cout, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        return self.final_conv(self.layer3(self.layer2(self.layer1(x))))


class _ConvNextBlock(nn.Module):
    """Depthwise 7x7, LayerNorm, MLP (x4 of the output width), layer scale, 1x1 to the output."""

    def __init__(self, dim: int, out: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * out)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * out, dim)
        self.gamma = nn.Parameter(torch.full((dim,), 1e-6))
        self.final = nn.Conv2d(dim, out, 1)

    def forward(self, x: Tensor) -> Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y)))) * self.gamma
        return self.final(x + y.permute(0, 3, 1, 2))


class _MotionEncoder(nn.Module):
    """Encodes correlation features and the current flow; the flow is appended to the output."""

    def __init__(self, cfg: SeaRaftConfig) -> None:
        super().__init__()
        d = cfg.dim
        self.convc1 = nn.Conv2d(cfg.corr_channels, 2 * d, 1)
        self.convc2 = nn.Conv2d(2 * d, d + d // 2, 3, padding=1)
        self.convf1 = nn.Conv2d(2, d, 7, padding=3)
        self.convf2 = nn.Conv2d(d, d // 2, 3, padding=1)
        self.conv = nn.Conv2d(2 * d, d - 2, 3, padding=1)

    def forward(self, flow: Tensor, corr: Tensor) -> Tensor:
        c = F.relu(self.convc2(F.relu(self.convc1(corr))))
        f = F.relu(self.convf2(F.relu(self.convf1(flow))))
        return torch.cat([F.relu(self.conv(torch.cat([c, f], dim=1))), flow], dim=1)


class _UpdateBlock(nn.Module):
    def __init__(self, cfg: SeaRaftConfig) -> None:
        super().__init__()
        self.encoder = _MotionEncoder(cfg)
        self.refine = nn.ModuleList(
            _ConvNextBlock(3 * cfg.dim, cfg.dim) for _ in range(cfg.num_blocks)
        )

    def forward(self, net: Tensor, context: Tensor, corr: Tensor, flow: Tensor) -> Tensor:
        features = torch.cat([context, self.encoder(flow, corr)], dim=1)
        for block in self.refine:
            net = block(torch.cat([net, features], dim=1))
        return net


def _pixel_grid(n: int, h: int, w: int, device: torch.device) -> Tensor:
    """float [n, 2, h, w] of (x, y) pixel coordinates."""
    ys, xs = torch.meshgrid(
        torch.arange(h, device=device, dtype=torch.float32),
        torch.arange(w, device=device, dtype=torch.float32),
        indexing="ij",
    )
    return torch.stack([xs, ys]).unsqueeze(0).expand(n, 2, h, w)


class SeaRaft(nn.Module):
    """The SEA-RAFT network (inference only); parameter names match the published checkpoints.

    Args:
        config: network settings; default WR-Arena's spring-M.

    Example:
        >>> cfg = SeaRaftConfig(dim=8, initial_dim=8, block_dims=(8, 8, 8), stage_blocks=(1, 1, 1))
        >>> net = SeaRaft(cfg).eval()
        >>> img = torch.zeros(1, 3, 128, 128)
        >>> net(img, img).shape
        torch.Size([1, 2, 128, 128])
    """

    def __init__(self, config: SeaRaftConfig | None = None) -> None:
        super().__init__()
        cfg = self.config = config or SeaRaftConfig()
        d = cfg.dim
        self.cnet = _Encoder(cfg, 6, 2 * d)
        self.init_conv = nn.Conv2d(2 * d, 2 * d, 3, padding=1)
        self.upsample_weight = nn.Sequential(
            nn.Conv2d(d, 2 * d, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(2 * d, 64 * 9, 1)
        )
        # outputs flow (2) and the mixture-of-Laplace parameters (4), unused at inference
        self.flow_head = nn.Sequential(
            nn.Conv2d(d, 2 * d, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(2 * d, 6, 3, padding=1),
        )
        self.fnet = _Encoder(cfg, 3, 2 * d)
        self.update_block = _UpdateBlock(cfg)

    def _correlation_pyramid(self, f1: Tensor, f2: Tensor) -> list[Tensor]:
        n, c, h, w = f1.shape
        a = f1.reshape(n, c, h * w).transpose(1, 2)
        levels = []
        for _ in range(self.config.corr_levels):
            h2, w2 = f2.shape[-2:]
            corr = (a @ f2.reshape(n, c, h2 * w2)) / math.sqrt(c)
            levels.append(corr.reshape(n * h * w, 1, h2, w2))
            f2 = F.interpolate(f2, scale_factor=0.5, mode="bilinear", align_corners=False)
        return levels

    def _lookup(self, pyramid: list[Tensor], coords: Tensor) -> Tensor:
        """Samples each level in a (2r+1)^2 window around ``coords`` [n, 2, h, w] (x, y)."""
        n, _, h, w = coords.shape
        r = self.config.radius
        offsets = torch.linspace(-r, r, 2 * r + 1, device=coords.device)
        # The x offset runs along the window's first axis and the y offset along its second:
        # the channel order the trained weights expect.
        ox, oy = torch.meshgrid(offsets, offsets, indexing="ij")
        window = torch.stack([ox, oy], dim=-1).view(1, 2 * r + 1, 2 * r + 1, 2)
        centre = coords.permute(0, 2, 3, 1).reshape(n * h * w, 1, 1, 2)
        out = []
        for i, corr in enumerate(pyramid):
            hl, wl = corr.shape[-2:]
            xy = centre / 2**i + window
            # pixel coordinates -> grid_sample's [-1, 1] with corner-aligned pixel centres
            gx = 2 * xy[..., 0:1] / (wl - 1) - 1
            gy = 2 * xy[..., 1:2] / (hl - 1) - 1
            sampled = F.grid_sample(corr, torch.cat([gx, gy], dim=-1), align_corners=True)
            out.append(sampled.view(n, h, w, -1))
        return torch.cat(out, dim=-1).permute(0, 3, 1, 2).contiguous().float()

    @staticmethod
    def _upsample(flow: Tensor, mask: Tensor) -> Tensor:
        """Convex combination of each coarse pixel's 3x3 neighbours: [n, 2, h, w] -> x8."""
        n, _, h, w = flow.shape
        weights_ = torch.softmax(mask.view(n, 1, 9, 8, 8, h, w), dim=2)
        patches = F.unfold(8 * flow, (3, 3), padding=1).view(n, 2, 9, 1, 1, h, w)
        up = (weights_ * patches).sum(dim=2)  # [n, 2, 8, 8, h, w]
        return up.permute(0, 1, 4, 2, 5, 3).reshape(n, 2, 8 * h, 8 * w)

    def forward(self, image1: Tensor, image2: Tensor, iters: int | None = None) -> Tensor:
        """Flow from ``image1`` to ``image2``.

        Args:
            image1: float [N, 3, H, W], RGB in [0, 255].
            image2: float [N, 3, H, W], RGB in [0, 255].
            iters: refinement iterations; default ``config.iters``.

        Returns:
            float [N, 2, H, W]: (dx, dy) in pixels of the input size.
        """
        iters = self.config.iters if iters is None else iters
        x1 = 2 * (image1 / 255.0) - 1.0
        x2 = 2 * (image2 / 255.0) - 1.0
        h, w = x1.shape[-2:]
        ph, pw = (-h) % 8, (-w) % 8
        pad = [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2]
        x1 = F.pad(x1, pad, mode="replicate")
        x2 = F.pad(x2, pad, mode="replicate")
        hc, wc = x1.shape[-2] // 8, x1.shape[-1] // 8
        smallest = min(hc, wc) // 2 ** (self.config.corr_levels - 1)
        if smallest < 2:
            raise ContractError(
                f"Frames of {h}x{w} (after resizing) are too small for SEA-RAFT's "
                f"{self.config.corr_levels}-level correlation pyramid: the coarsest level would "
                f"be under 2 px; each side needs at least {8 * 2**self.config.corr_levels - 7} px."
            )

        net, context = torch.split(
            self.init_conv(self.cnet(torch.cat([x1, x2], dim=1))), 2 * [self.config.dim], dim=1
        )
        flow = self.flow_head(net)[:, :2]
        pyramid = self._correlation_pyramid(self.fnet(x1), self.fnet(x2))
        grid = _pixel_grid(flow.shape[0], hc, wc, flow.device)
        for _ in range(iters):
            corr = self._lookup(pyramid, grid + flow)
            net = self.update_block(net, context, corr, flow)
            flow = flow + self.flow_head(net)[:, :2]
        up = self._upsample(flow, 0.25 * self.upsample_weight(net))
        return up[..., pad[2] : pad[2] + h, pad[0] : pad[0] + w]


def _strip_prefix(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    # checkpoints saved from DataParallel carry a "module." prefix
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module.") :]: v for k, v in state.items()}
    return dict(state)


def load_sea_raft_state(net: SeaRaft, state: Mapping[str, Tensor]) -> None:
    """Loads a checkpoint state dict into ``net``, requiring every parameter and buffer.

    Raises:
        WeightsError: the state dict lacks some of the network's tensors or has wrong shapes.
    """
    state = _strip_prefix(state)
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    wrong = [
        f"{k}: {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if missing or wrong:
        raise weights.WeightsError(
            f"The SEA-RAFT checkpoint does not fit the {net.config} network: "
            f"{len(missing)} missing tensors ({', '.join(missing[:4])}{'...' if len(missing) > 4 else ''}) "
            f"and {len(wrong)} of wrong shape ({'; '.join(wrong[:4])})."
        )
    extra = sorted(set(state) - set(own))
    if extra:
        # Upstream loads with strict=False; extra entries are reported, not fatal.
        warnings.warn(
            f"SEA-RAFT checkpoint has {len(extra)} tensors the network does not use: "
            f"{', '.join(extra[:4])}",
            stacklevel=2,
        )
    net.load_state_dict({k: state[k] for k in own}, strict=True)


def sea_raft_weights_entry(sha256: str, name: str = SEA_RAFT_WEIGHTS) -> weights.WeightsEntry:
    """A weights entry for the spring-M checkpoint pinned to a digest you checked yourself.

    Args:
        sha256: full lowercase hex sha256 of the file (``sha256sum`` output).
        name: registry name.
    """
    if not (isinstance(sha256, str) and len(sha256) == 64):
        raise ConfigError(f"Expected sha256 as 64 hex digits, but got {sha256!r}.")
    try:
        int(sha256, 16)
    except ValueError:
        raise ConfigError(f"Expected sha256 as 64 hex digits, but got {sha256!r}.") from None
    return weights.WeightsEntry(
        name=name,
        filename=SEA_RAFT_FILENAME,
        description="SEA-RAFT spring-M (Tartan-C-T-TSKH-spring540x960-M), WR-Arena's smoothness flow",
        licence="BSD-3-Clause",
        licence_notes="princeton-vl/SEA-RAFT; checkpoint as linked from WR-Arena",
        sha256=sha256.lower(),
        urls=(SEA_RAFT_URL,),
    )


def _unpinned_error() -> weights.WeightsError:
    env = sea_raft_weights_entry("0" * 64).env_var
    return weights.WeightsError(
        f"panbench pins no sha256 for the SEA-RAFT checkpoint {SEA_RAFT_FILENAME} yet, so it "
        f"cannot verify one. Download it (`wget {SEA_RAFT_URL}`), check it, and pass its digest: "
        "make_flow_estimator('sea-raft', path='/path/to/file', sha256='<sha256sum output>') "
        f"(without path= the file is looked up in {env} and then the weights cache); or register "
        "a pinned entry with panbench.weights.register(sea_raft_weights_entry(sha256))."
    )


class SeaRaftFlow:
    """WR-Arena's flow estimator: SEA-RAFT spring-M, as called by compute_smoothness_scores.py.

    Weights are found through :mod:`panbench.weights` under :data:`SEA_RAFT_WEIGHTS` (explicit
    ``path``, then ``PANBENCH_WEIGHTS_SEA_RAFT_SPRING_M``, then the cache) and sha256-checked
    against the registered pin, or against ``sha256`` when panbench pins none.

    Args:
        path: explicit checkpoint file (a torch state dict, loaded with ``weights_only=True``).
        sha256: the file's digest, needed while panbench pins none (and overriding the pin).
        device: torch device to run on (upstream uses CUDA with autocast; panbench float32).
        config: network settings; default spring-M (tests pass a tiny one).
        iters: refinement iterations; default ``config.iters`` (4).
        weights_name: registry name of the pinned file.

    Raises:
        WeightsError: no pin is known, or the file is missing or fails its sha256 check.
    """

    name = "sea-raft"

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        sha256: str | None = None,
        device: str | torch.device = "cpu",
        config: SeaRaftConfig | None = None,
        iters: int | None = None,
        weights_name: str = SEA_RAFT_WEIGHTS,
    ) -> None:
        self.config = config or SeaRaftConfig()
        self.iters = self.config.iters if iters is None else int(iters)
        if self.iters < 1:
            raise ConfigError(f"Expected iters >= 1, but got {iters!r}.")
        self.device = torch.device(device)
        if sha256 is not None:
            with weights.registered(sea_raft_weights_entry(sha256, weights_name)):
                state, self.sha256 = self._load(weights_name, path, pinned_by_caller=True)
        elif weights_name in weights.WEIGHTS:
            state, self.sha256 = self._load(weights_name, path, pinned_by_caller=False)
        else:
            raise _unpinned_error()
        net = SeaRaft(self.config)
        load_sea_raft_state(net, state)
        self.net = net.to(self.device).eval()

    def _load(self, name: str, path: Any, pinned_by_caller: bool) -> tuple[dict[str, Any], str]:
        """The verified state dict and the digest it was checked against."""
        try:
            return weights.load_state_dict(name, path), weights.get_entry(name).pinned
        except weights.WeightsError as err:
            if pinned_by_caller and "not found" in str(err):
                raise weights.WeightsError(
                    f"{err} (The pin was given as sha256=; `panbench weights pull` only knows "
                    f"files panbench pins: download it with `wget {SEA_RAFT_URL}` instead.)"
                ) from err
            raise

    def options(self) -> dict[str, Any]:
        """Settings for results provenance."""
        return {
            "config": asdict(self.config),
            "iters": self.iters,
            "device": str(self.device),
            "sha256": self.sha256,
        }

    @torch.no_grad()
    def __call__(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        """Flow from ``prev`` to ``nxt``: uint8 [H, W, 3] x2 -> float32 [H, W, 2] (dx, dy)."""
        a, b = check_frame(prev, "prev"), check_frame(nxt, "nxt")
        if a.shape != b.shape:
            raise ContractError(
                f"Expected prev and nxt to have the same shape, but got {a.shape} and {b.shape}."
            )
        h, w = a.shape[:2]
        s = self.config.scale
        images = []
        for frame in (a, b):  # one at a time, as upstream: batched resizing rounds differently
            x = torch.from_numpy(frame).to(self.device, torch.float32).permute(2, 0, 1)[None]
            if s:
                x = F.interpolate(x, scale_factor=2.0**s, mode="bilinear", align_corners=False)
            images.append(x)  # [1, 3, H', W'], RGB in [0, 255]
        flow = self.net(images[0], images[1], iters=self.iters)
        if s:
            if flow.shape[-2:] == (h * 2**s, w * 2**s):  # upstream's call, exactly
                flow = F.interpolate(
                    flow, scale_factor=2.0**-s, mode="bilinear", align_corners=False
                )
            else:  # sizes not divisible by 2**-s: upstream would return a smaller field
                flow = F.interpolate(flow, size=(h, w), mode="bilinear", align_corners=False)
            flow = flow * 2.0**-s
        return flow[0].permute(1, 2, 0).float().cpu().numpy()
