"""Training throughput, peak memory and model FLOPs utilisation (MFU) of a reference-model config.

    python benchmarks/bench_train_mfu.py --config reference_model/configs/small.yaml --device cuda

A step is what ``panbench train`` does per step of a stage: forward, backward and AdamW on the
stage's trainable parameters (h in stage 1; f and g in stage 2), bf16 autocast on CUDA, on one
fixed batch of the config's own windows (data generation is not timed). FLOPs are counted once
per stage with torch's ``FlopCounterMode`` (matrix multiplies, convolutions and attention, which
is what MFU counts; elementwise work is left out) and divided by the measured step time. MFU is
that rate over the device's dense bf16 peak: known for A100, H100 and H200 by name (NVIDIA's
datasheet numbers without sparsity), or given with ``--peak-tflops``; on a CPU it is reported
only when a peak is given. Peak memory is ``torch.cuda.max_memory_allocated`` on CUDA and the
process's maximum resident set on a CPU.

``nox -s bench`` runs :func:`run` (the ``tiny`` config on this machine's device).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]

#: Dense bf16 tensor-core peaks in TFLOP/s (NVIDIA datasheets; the sparse figures halved),
#: matched against ``torch.cuda.get_device_name()`` in this order (most specific first).
PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.4),
    ("H200", 989.4),
    ("A100", 312.0),
)


def peak_tflops(device_name: str) -> float | None:
    """The dense bf16 peak of a GPU by its name, or None when the name is not in the table."""
    for key, value in PEAK_BF16_TFLOPS:
        if key.lower() in device_name.lower():
            return value
    return None


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of one call of ``fn`` (forward and backward alike), counted by torch's dispatcher."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return int(counter.get_total_flops())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_memory_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _step_fn(
    model: Any, stage: str, train: Any, batch: tuple, device: torch.device
) -> Callable[[], None]:
    """One training step of ``stage`` on ``batch`` as ``train`` (the config's TrainConfig)
    sets it up: losses (unrolled frames included), backward, AdamW, zeroed grads."""
    from reference_model.train import _trainable  # what `panbench train` trains in the stage

    for p in model.parameters():
        p.requires_grad_(False)
    params = list(_trainable(model, stage, train.joint_encoder, train.ae_decoder_only).values())
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if device.type == "cuda"
        else contextlib.nullcontext()
    )
    frames, ids, outcomes = batch
    # Stage 1 trains on about batch_size single frames: that many windows' frames, flattened.
    ae_frames = frames[: max(1, math.ceil(frames.shape[0] / frames.shape[1]))].flatten(0, 1)
    gen = torch.Generator().manual_seed(0)

    def step() -> None:
        with autocast:
            if stage == "autoencoder":
                losses = model.autoencoder_loss(ae_frames, gen, train.ae_object_weight)
            else:
                losses = model.dynamics_loss(
                    frames,
                    ids,
                    gen,
                    outcomes,
                    train.joint_encoder,
                    train.unroll,
                    train.unroll_steps,
                    train.unroll_history,
                )
        losses["loss"].backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def measure(
    config: Path, device: str, steps: int, batch_size: int | None, peak: float | None
) -> list[dict[str, Any]]:
    """One row per training stage of ``config``: samples/s, step time, FLOPs, MFU, memory."""
    from reference_model.config import load_run_config
    from reference_model.data import WindowStream
    from reference_model.model import PanModel

    run_cfg = load_run_config(config)
    dev = torch.device(device)
    if peak is None and dev.type == "cuda":
        peak = peak_tflops(torch.cuda.get_device_name(dev))
    torch.manual_seed(0)
    model = PanModel(run_cfg.model).to(dev).train()
    size = batch_size or run_cfg.train.batch_size
    window = run_cfg.model.history + 1 + run_cfg.train.unroll
    stream = WindowStream(run_cfg.data, run_cfg.model.resolution, window, seed=0)
    frames, texts, outcomes = stream.windows(0, size)
    batch = (frames.to(dev), model.encode_actions(texts), outcomes.to(dev))
    counts = model.num_parameters()
    where = (
        f"{config.stem} config ({counts['total'] / 1e6:.2f} M parameters), batch {size}, "
        f"{dev.type}" + (f" {torch.cuda.get_device_name(dev)}" if dev.type == "cuda" else "")
    )
    rows = []
    for stage in ("autoencoder", "dynamics"):
        step = _step_fn(model, stage, run_cfg.train, batch, dev)
        step()  # warm-up: allocations, kernel choice, optimizer state
        flops = count_flops(step)
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        _sync(dev)
        tic = time.perf_counter()
        for _ in range(steps):
            step()
        _sync(dev)
        seconds = (time.perf_counter() - tic) / steps
        achieved = flops / seconds / 1e12
        # Samples: frames in stage 1, windows in stage 2 (as the config's batch_size counts).
        samples = math.ceil(size / window) * window if stage == "autoencoder" else size
        rows.append(
            {
                "stage": stage,
                "where": where,
                "samples_per_s": samples / seconds,
                "step_s": seconds,
                "tflop_per_step": flops / 1e12,
                "achieved_tflops": achieved,
                "mfu": None if peak is None else achieved / peak,
                "peak_tflops": peak,
                "peak_memory_mib": _peak_memory_mib(dev),
            }
        )
    return rows


def run(quick: bool) -> list[dict]:
    """``nox -s bench``: the tiny config's two stages on this machine's device."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    config = ROOT / "reference_model" / "configs" / "tiny.yaml"
    out = []
    for r in measure(config, device, 2 if quick else 5, None, None):
        mfu = "n/a (no peak for a CPU)" if r["mfu"] is None else f"MFU {100 * r['mfu']:.1f}%"
        out.append(
            {
                "bench": "train_mfu",
                "case": f"train {r['stage']} step, tiny",
                "value": round(r["achieved_tflops"] * 1e3, 2),
                "unit": "GFLOP/s",
                "notes": (
                    f"{r['where']}, {torch.get_num_threads()} threads; "
                    f"{r['samples_per_s']:.1f} samples/s, {r['tflop_per_step'] * 1e3:.1f} GFLOP "
                    f"a step; {mfu}; peak memory {r['peak_memory_mib']:.0f} MiB"
                ),
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=ROOT / "reference_model/configs/small.yaml")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per stage")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the config's")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the device's peak")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps: expected an integer >= 1, got {args.steps}")
    if not args.config.is_file():
        parser.error(f"--config: expected a config file, got {args.config} (not found)")
    rows = measure(args.config, args.device, args.steps, args.batch_size, args.peak_tflops)
    print(f"{rows[0]['where']}, {args.steps} timed steps per stage")
    print("| stage | samples/s | s/step | TFLOP/step | TFLOP/s | MFU | peak memory MiB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        mfu = "n/a" if r["mfu"] is None else f"{100 * r['mfu']:.1f}%"
        print(
            f"| {r['stage']} | {r['samples_per_s']:.1f} | {r['step_s']:.4f} | "
            f"{r['tflop_per_step']:.4f} | {r['achieved_tflops']:.3f} | {mfu} | "
            f"{r['peak_memory_mib']:.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
