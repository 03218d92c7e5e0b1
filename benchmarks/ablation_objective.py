"""The generative-versus-latent ablation: collapse probe and losses of two training runs, plotted.

Reads the ``log.csv`` of runs trained from ``reference_model/configs/ablation-generative.yaml``
and ``ablation-latent.yaml`` (same model, same data, same seed; only ``model.objective``
differs) and writes a figure of the collapse probe (variance of f's predicted state tokens
across the batch) and of the losses over training, plus the probe's numbers as a Markdown table.

    python benchmarks/ablation_objective.py runs/ablation-generative runs/ablation-latent \
        --out docs/figures/ablation-objective.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd


def _read(run: Path) -> pd.DataFrame:
    log = run / "log.csv"
    if not log.is_file():
        sys.exit(f"error: expected a training run folder with log.csv, but {log} does not exist")
    frame = pd.read_csv(log)
    return frame[frame["stage"] == "dynamics"].reset_index(drop=True)


def table(runs: dict[str, pd.DataFrame], tail: int = 5) -> str:
    """Markdown rows: the probe at the first logged step and over the last ``tail`` rows."""
    lines = [
        "| objective | steps | collapse probe, first log | collapse probe, last "
        f"{tail} logs (mean) | ratio | diffusion loss, last | latent L2, last |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, frame in runs.items():
        first = float(frame["collapse"].iloc[0])
        last = float(frame["collapse"].iloc[-tail:].mean())
        lines.append(
            f"| {name} | {int(frame['step'].iloc[-1])} | {first:.4g} | {last:.4g} | "
            f"{last / first:.3g} | {float(frame['diffusion'].iloc[-tail:].mean()):.4f} | "
            f"{float(frame['latent'].iloc[-tail:].mean()):.4f} |"
        )
    return "\n".join(lines)


def figure(runs: dict[str, pd.DataFrame], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for name, frame in runs.items():
        axes[0].plot(frame["step"], frame["collapse"], label=name)
        axes[1].plot(frame["step"], frame["diffusion"], label=name)
        axes[2].plot(frame["step"], frame["latent"], label=name)
    titles = (
        "collapse probe: state-token variance across the batch",
        "diffusion loss of g (next frame)",
        "latent L2 of f's head to h(o')",
    )
    for ax, title in zip(axes, titles, strict=True):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("second-stage step")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("generative", type=Path, help="run folder of ablation-generative.yaml")
    parser.add_argument("latent", type=Path, help="run folder of ablation-latent.yaml")
    parser.add_argument("--out", type=Path, default=Path("docs/figures/ablation-objective.png"))
    args = parser.parse_args(argv)
    runs = {"generative": _read(args.generative), "latent": _read(args.latent)}
    figure(runs, args.out)
    print(table(runs))
    print(f"figure written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
