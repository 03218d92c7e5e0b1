"""The generative-versus-latent ablation: collapse probes and losses of training runs, plotted.

Reads the ``log.csv`` of runs trained from ``reference_model/configs/ablation-generative.yaml``
and ``ablation-latent.yaml`` (same model, same data, same seed, h frozen; only
``model.objective`` differs) and, with ``--joint``, of ``ablation-generative-joint.yaml`` and
``ablation-latent-joint.yaml`` (h trained jointly). Writes a figure of the two collapse probes
(the variance across the batch of f's predicted state tokens and of h's latents) and of the
losses over training, plus the probes' numbers as a Markdown table, and measures each exported
h on fixed shapes frames: its latent variance and participation ratio (effective dimensions,
blind to scale, so an h that only shrinks its latents is told apart from one that loses
dimensions).

    python benchmarks/ablation_objective.py runs/ablation-generative runs/ablation-latent \
        --joint runs/ablation-generative-joint runs/ablation-latent-joint \
        --out docs/figures/ablation-objective.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd


def _read(run: Path) -> pd.DataFrame:
    log = run / "log.csv"
    if not log.is_file():
        sys.exit(f"error: expected a training run folder with log.csv, but {log} does not exist")
    frame = pd.read_csv(log)
    return frame[frame["stage"] == "dynamics"].reset_index(drop=True)


def _probe(frame: pd.DataFrame, column: str, tail: int) -> tuple[str, str, str]:
    """First logged value, mean of the last ``tail`` and their ratio (n/a: not logged)."""
    if column not in frame or frame[column].isna().all():
        return "n/a", "n/a", "n/a"
    first = float(frame[column].iloc[0])
    last = float(frame[column].iloc[-tail:].mean())
    return f"{first:.4g}", f"{last:.4g}", f"{last / first:.3g}"


def table(runs: dict[str, pd.DataFrame], tail: int = 5) -> str:
    """Markdown rows: each probe at the first logged step and over the last ``tail`` rows."""
    lines = [
        "| run | steps | f probe, first | f probe, last "
        f"{tail} (mean) | ratio | h probe, first | h probe, last {tail} (mean) | ratio | "
        "diffusion loss, last | latent L2, last |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, frame in runs.items():
        f_probe = " | ".join(_probe(frame, "collapse", tail))
        h_probe = " | ".join(_probe(frame, "encoder_var", tail))
        lines.append(
            f"| {name} | {int(frame['step'].iloc[-1])} | {f_probe} | {h_probe} | "
            f"{float(frame['diffusion'].iloc[-tail:].mean()):.4f} | "
            f"{float(frame['latent'].iloc[-tail:].mean()):.4f} |"
        )
    return "\n".join(lines)


def participation_ratio(latents: np.ndarray) -> float:
    """Effective dimension of latents [N, D]: (sum of the covariance's eigenvalues) squared over
    the sum of their squares. 1 when they vary along one direction only, D when evenly along
    D; unchanged by rescaling, so it separates a loss of dimensions from a shrinking scale."""
    x = np.asarray(latents, dtype=np.float64)
    x = x - x.mean(axis=0)
    eig = np.linalg.svd(x, compute_uv=False) ** 2  # the covariance's eigenvalues, times N - 1
    return float(eig.sum() ** 2 / (eig**2).sum())


def encoder_probe(run: Path, frames: np.ndarray) -> tuple[float, float]:
    """h of ``run``'s exported model on fixed frames: (latent variance, participation ratio)."""
    import torch

    from reference_model.model import PanModel

    model = PanModel.from_pretrained(run / "model")
    with torch.no_grad():
        z = model.encode_frames(torch.from_numpy(frames)[:, None])[:, 0].flatten(1).numpy()
    return float(z.var(axis=0, ddof=1).mean()), participation_ratio(z)


def probe_frames(count: int = 256, resolution: int = 32) -> np.ndarray:
    """uint8 [count, side, side, 3]: first frames of shapes episodes 0..count-1."""
    from panbench.envs import make

    env = make("shapes", resolution=resolution)
    return env.render_batch([env.reset(seed) for seed in range(count)])


def figure(runs: dict[str, pd.DataFrame], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(17, 3.9))
    for name, frame in runs.items():
        style = "--" if "joint" in name else "-"
        axes[0].plot(frame["step"], frame["collapse"], style, label=name)
        if "encoder_var" in frame:
            axes[1].plot(frame["step"], frame["encoder_var"], style, label=name)
        axes[2].plot(frame["step"], frame["diffusion"], style, label=name)
        axes[3].plot(frame["step"], frame["latent"], style, label=name)
    titles = (
        "f probe: state-token variance across the batch",
        "h probe: latent variance across the batch",
        "diffusion loss of g (next frame)",
        "latent L2 of f's head to h(o')",
    )
    for ax, title in zip(axes, titles, strict=True):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("second-stage step")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("generative", type=Path, help="run folder of ablation-generative.yaml")
    parser.add_argument("latent", type=Path, help="run folder of ablation-latent.yaml")
    parser.add_argument(
        "--joint",
        nargs=2,
        type=Path,
        metavar=("GENERATIVE", "LATENT"),
        help="run folders of ablation-generative-joint.yaml and ablation-latent-joint.yaml",
    )
    parser.add_argument("--out", type=Path, default=Path("docs/figures/ablation-objective.png"))
    args = parser.parse_args(argv)
    runs = {"generative": _read(args.generative), "latent": _read(args.latent)}
    if args.joint:
        runs["generative, joint h"] = _read(args.joint[0])
        runs["latent, joint h"] = _read(args.joint[1])
    figure(runs, args.out)
    print(table(runs))
    frames = probe_frames()
    folders = [("generative", args.generative), ("latent", args.latent)]
    if args.joint:
        folders += [("generative, joint h", args.joint[0]), ("latent, joint h", args.joint[1])]
    print(f"\nh of each exported model on the first frames of {len(frames)} shapes episodes:\n")
    print("| run | latent variance | participation ratio (effective dimensions) |")
    print("| --- | ---: | ---: |")
    for name, folder in folders:
        if not (folder / "model" / "config.json").is_file():
            print(f"| {name} | n/a (no exported model) | n/a |")
            continue
        var, ratio = encoder_probe(folder, frames)
        print(f"| {name} | {var:.4g} | {ratio:.1f} |")
    print(f"figure written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
