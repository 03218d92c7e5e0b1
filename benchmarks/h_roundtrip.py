"""How well each model's encoder h draws what it encodes: frame -> latent -> frame, per domain.

No dynamics model can draw more than its h's decoder does, so this is the ceiling of every
rollout a pan-ref checkpoint makes. For each env (the streams pan-core scores, rendered at the
model's resolution from fixed seeds) and each checkpoint, it reports the PSNR of the round trip
and the mean absolute error on object pixels only (those away from the frame's background colour,
as ``train.ae_object_weight`` defines them), where small objects (a maze's agent, the table's
cubes) fade first. With ``--out`` it also writes a figure: the true frames, then one row of
round trips per checkpoint.

    MUJOCO_GL=egl python benchmarks/h_roundtrip.py reference_model/checkpoints/pan-tiny-v4 \
        reference_model/checkpoints/pan-tiny-v12 --out /tmp/h-roundtrip.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

#: (label, env name, env kwargs, render resolution): the domains of pan-core's streams
DOMAINS: tuple[tuple[str, str, dict[str, Any], int], ...] = (
    ("shapes", "shapes", {}, 64),
    ("bounce", "bounce", {}, 64),
    ("maze", "maze", {"size": 8}, 64),
    ("blocks", "blocks", {"size": 6, "num_blocks": 3}, 48),
    ("table3d", "table3d", {"objects": 3, "scenario": "push"}, 64),
    # as pusht-sim and the training stream reset it: the block near its goal, not anywhere
    ("pusht", "pusht", {"max_offset": 40, "max_rotation": 45}, 64),
    ("pong", "atari-pong", {}, 84),
)


def roundtrip_errors(truth: np.ndarray, recon: np.ndarray) -> tuple[float, float]:
    """(mean per-frame PSNR in dB, as the tasks' ``psnr`` metric computes it, mean absolute
    error in 0-255 levels on object pixels) of uint8 [N, H, W, 3] frames; object pixels as
    ``train.ae_object_weight`` counts them."""
    import torch

    from panbench.metrics.frame import psnr_video
    from reference_model.encoder import frames_to_tensor, object_mask

    t, r = truth.astype(np.float64), recon.astype(np.float64)
    psnr = float(psnr_video(recon[None], truth[None]).mean())
    mask = object_mask(frames_to_tensor(torch.from_numpy(truth)))[:, 0].numpy()
    obj = float(np.abs(t - r)[mask].mean()) if mask.any() else float("nan")
    return psnr, obj


def _frames(name: str, kwargs: dict[str, Any], res: int, side: int, n: int) -> np.ndarray:
    from PIL import Image

    from panbench.envs import make

    env = make(name, resolution=res, **kwargs)
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        state = env.reset(1000 + i)
        for _ in range(3):  # a few random moves, so that objects are off their start
            acts = env.actions(state)
            state = env.step(state, acts[rng.integers(len(acts))])
        frame = Image.fromarray(env.render(state)).resize((side, side), Image.BILINEAR)
        out.append(np.asarray(frame))
    return np.stack(out)


def _roundtrip(model: Any, frames: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        z = model.encode_frames(torch.from_numpy(frames)[:, None])
        return model.decode_latents(z[:, 0]).numpy()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", type=Path, help="pan-ref checkpoint folders")
    parser.add_argument("--frames", type=int, default=16, help="frames per domain")
    parser.add_argument("--out", type=Path, help="figure (PNG): truth, then each model's row")
    args = parser.parse_args(argv)
    from reference_model.model import PanModel

    for path in args.models:
        if not (path / "config.json").is_file():
            sys.exit(f"error: expected a pan-ref checkpoint folder, but {path} has no config.json")
    models = [PanModel.from_pretrained(p) for p in args.models]
    side = models[0].config.resolution
    if any(m.config.resolution != side for m in models):
        sys.exit("error: expected checkpoints of one resolution")
    print("| domain | " + " | ".join(f"{p.name} PSNR / object error" for p in args.models) + " |")
    print("|---|" + "---|" * len(models))
    rows: list[list[np.ndarray]] = []
    for label, name, kwargs, res in DOMAINS:
        truth = _frames(name, kwargs, res, side, args.frames)
        recons = [_roundtrip(m, truth) for m in models]
        cells = []
        for recon in recons:
            psnr, obj = roundtrip_errors(truth, recon)
            cells.append(f"{psnr:.1f} dB / {obj:.1f}")
        print(f"| {label} | " + " | ".join(cells) + " |")
        rows.append([truth[:4], *[r[:4] for r in recons]])
    if args.out:
        _figure(rows, ["truth", *[p.name for p in args.models]], args.out)
    return 0


def _figure(rows: list[list[np.ndarray]], names: list[str], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(names), len(rows), figsize=(1.9 * len(rows), 1.05 * len(names) + 0.5), squeeze=False
    )
    for j, (domain, blocks) in enumerate(zip(DOMAINS, rows, strict=True)):
        for i, block in enumerate(blocks):
            ax = axes[i][j]
            ax.imshow(np.concatenate(list(block[:2]), axis=1), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(domain[0], fontsize=10)
            if j == 0:
                ax.set_ylabel(names[i], fontsize=9)
    fig.suptitle("h's round trip (frame -> latent -> frame) at 32 px", fontsize=11)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"figure written to {out}")


if __name__ == "__main__":
    raise SystemExit(main())
