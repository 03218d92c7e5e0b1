"""Training utilities shared by every recipe: schedules, seeds, logs, distributed setup, run folders.

The classic recipe (``reference_model.train``) and the open-weights recipe
(``reference_model.ow.train``) both import from here, never from each other.
"""

from __future__ import annotations

import csv
import math
import os
import shutil
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from panbench.errors import ConfigError

__all__ = [
    "CsvLog",
    "barrier",
    "batch_seed",
    "check_fresh_out",
    "free_port",
    "lr_lambda",
    "recover_swap",
    "setup_distributed",
    "swap_dir",
    "training_record",
]


def lr_lambda(warmup: int, total: int, min_ratio: float) -> Callable[[int], float]:
    """The learning-rate factor of a step: linear warm-up, then cosine decay to ``min_ratio``.

    Args:
        warmup: warm-up steps.
        total: steps of the whole schedule (warm-up included).
        min_ratio: the factor reached at ``total``.

    Returns:
        A function of the step for ``torch.optim.lr_scheduler.LambdaLR``.
    """

    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return f


def batch_seed(seed: int, step: int, rank: int, salt: int = 0) -> int:
    """A 63-bit seed for the random draws of one (step, rank); independent across steps."""
    state = np.random.SeedSequence([int(seed), int(step), int(rank), int(salt)]).generate_state(2)
    return int((int(state[0]) << 31) ^ int(state[1])) & 0x7FFFFFFFFFFFFFFF


def swap_dir(tmp: Path, final: Path) -> None:
    """Replaces folder ``final`` by ``tmp``; ``final`` is never half-written (old kept until)."""
    old = final.with_name(final.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def recover_swap(final: Path) -> None:
    """Finishes a :func:`swap_dir` that a kill interrupted between its two renames.

    The old folder was moved aside and the new one not yet moved in: the old one (complete) is
    put back, so ``--resume`` finds the last checkpoint instead of none.
    """
    old = final.with_name(final.name + ".old")
    if not final.exists() and old.is_dir():
        os.replace(old, final)


def check_fresh_out(out: Path, resume: bool) -> None:
    """Refuses to start a new run in a folder that holds one (after recovering a killed swap).

    Raises:
        ConfigError: ``out`` holds a checkpoint and ``resume`` is False.
    """
    recover_swap(out / "checkpoint")
    recover_swap(out / "model")
    if not resume and (out / "checkpoint").exists():
        raise ConfigError(
            f"{out} already holds a training run; pass --resume to continue it or choose a new "
            "--out."
        )


def training_record(
    config: str | Path, run: dict[str, Any], command: str | None, **extra: Any
) -> dict[str, Any]:
    """The ``training`` section every checkpoint's ``config.json`` records.

    Args:
        config: the training config file.
        run: the resolved training config as a dict.
        command: the command line (default: this process's ``sys.argv``).
        **extra: recipe-specific entries (``total_steps``, ``stage``, ...), kept in order.
    """
    return {
        "command": command or " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "config_file": str(config),
        "run": run,
        **extra,
    }


class CsvLog:
    """Append-only CSV of training metrics; on resume, rows after the checkpoint are dropped.

    Args:
        path: the CSV file.
        resume_step: the step the run resumes from (None: a new run, the file starts empty).
        columns: the CSV columns (the recipe's ``LOG_COLUMNS``).
    """

    def __init__(self, path: Path, resume_step: int | None, columns: tuple[str, ...]) -> None:
        self.path = path
        self.columns = columns
        rows: list[dict[str, str]] = []
        if resume_step is not None and path.exists():
            with path.open(newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, columns)
            w.writeheader()
            w.writerows(rows)
        self.tb: Any = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(path.parent / "tensorboard"))
        except Exception:  # TensorBoard is optional; the CSV is the record
            self.tb = None

    def write(self, row: dict[str, Any]) -> None:
        """Appends ``row`` (and its float values to TensorBoard when installed)."""
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, self.columns).writerow(row)
        if self.tb is not None:
            for k, v in row.items():
                if isinstance(v, float) and k not in ("seconds",):
                    self.tb.add_scalar(f"{row['stage']}/{k}", v, row["step"])


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (for a lone process's private group)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def setup_distributed(
    device: str | None, need_group: bool = False
) -> tuple[int, int, torch.device]:
    """Rank, world size and device; initialises the process group (``env://``) when needed.

    Args:
        device: ``cpu``, ``cuda``, ... (default: CUDA when available).
        need_group: a group is needed even for one process (FSDP2).
    """
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if dev.type == "cuda" and world > 1:
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(dev)
    if (world > 1 or need_group) and not dist.is_initialized():
        if world == 1 and "MASTER_ADDR" not in os.environ:
            # A lone process (tests, one-GPU runs) gets a private local group.
            os.environ.update(
                MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), RANK="0", WORLD_SIZE="1"
            )
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), dev
    return 0, 1, dev


def barrier() -> None:
    """Waits for every rank (a no-op without a process group)."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
