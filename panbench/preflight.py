"""Checks of command-line options before a command runs: number ranges, devices, output paths.

Each check raises :class:`~panbench.errors.ConfigError` with what was expected, what was received
and, where there is one, the fix; the CLI turns it into exit code 2 before anything is written.
The checks are keyed by an option's ``argparse`` destination, so every command that has an
option (``--out``, ``--device``, ``--limit``, ...) gets the same check without code of its own.
"""

from __future__ import annotations

import argparse
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from panbench.errors import ConfigError

__all__ = ["RANGES", "check_args", "check_device", "check_output_folder"]

#: inclusive bounds (None: unbounded) of numeric options, by argparse destination
RANGES: dict[str, tuple[float | None, float | None]] = {
    "limit": (1, None),
    "batch_size": (1, None),
    "save_videos": (0, None),
    "threads": (1, None),
    "seed": (0, 2**32 - 1),
    "episodes": (1, None),
    "length": (1, None),
    "resolution": (1, 8192),
    "shard_size": (1, None),
    "max_frames": (1, None),
    "max_steps": (0, None),
    "max_episodes": (1, None),
    "context": (1, None),
    "horizon": (1, None),
    "stride": (1, None),
    "resamples": (1, None),
    "min_effect": (0, None),
    "port": (0, 65535),
    "max_states": (1, None),
}

#: options whose value must lie strictly inside (low, high)
OPEN_RANGES: dict[str, tuple[float, float]] = {
    "alpha": (0.0, 1.0),
    "model_timeout": (0.0, math.inf),
    "max_request_mb": (0.0, math.inf),
}

#: output options that name a folder panbench creates or resumes into
FOLDER_OUTPUTS = ("out",)

_DEVICE = re.compile(r"^(cpu|cuda|mps)(:(\d+))?$")


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def _check_range(dest: str, value: Any) -> None:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    flag = _flag(dest)
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"Expected {flag} to be a finite number, but got {value}.")
    if dest in OPEN_RANGES:
        low, high = OPEN_RANGES[dest]
        if not low < value < high:
            upper = "" if math.isinf(high) else f" and < {high:g}"
            raise ConfigError(f"Expected {flag} to be > {low:g}{upper}, but got {value:g}.")
    if dest in RANGES:
        lo, hi = RANGES[dest]
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            want = (
                f"between {lo:g} and {hi:g}"
                if lo is not None and hi is not None
                else f">= {lo:g}"
                if lo is not None
                else f"<= {hi:g}"
            )
            kind = "an integer" if isinstance(value, int) else "a number"
            raise ConfigError(f"Expected {flag} to be {kind} {want}, but got {value:g}.")


def check_device(device: str, flag: str = "--device") -> None:
    """Refuses a device this machine cannot run on.

    Args:
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        flag: the option's name, for the message.

    Raises:
        ConfigError: an unknown device string, or an accelerator this machine lacks.
    """
    match = _DEVICE.match(device.strip())
    if match is None:
        raise ConfigError(f"Expected {flag} to be cpu, cuda, cuda:N or mps, but got {device!r}.")
    kind, index = match.group(1), match.group(3)
    if kind == "cpu":
        return
    import torch

    if kind == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ConfigError(
                f"Expected {flag} to name a device this machine has, but got {device!r}: "
                "MPS is not available here. Use --device cpu."
            )
        return
    if not torch.cuda.is_available():
        raise ConfigError(
            f"Expected {flag} to name a device this machine has, but got {device!r}: CUDA is "
            "not available here (no GPU, or a CPU-only torch). Use --device cpu."
        )
    count = torch.cuda.device_count()
    if index is not None and int(index) >= count:
        raise ConfigError(
            f"Expected {flag} to name one of the {count} CUDA device(s) (cuda:0 to "
            f"cuda:{count - 1}), but got {device!r}."
        )


def check_output_folder(path: Path, flag: str = "--out") -> None:
    """Refuses an output folder that is a file, lies under a file, or cannot be written.

    Raises:
        ConfigError: naming the path, what it is, and the fix.
    """
    if path.exists() and not path.is_dir():
        raise ConfigError(
            f"Expected {flag} to be a folder (or a path that does not exist yet), but {path} "
            "is a file. Choose another --out."
        )
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise ConfigError(
            f"Expected {flag} to be a folder panbench can create, but {existing} on its path "
            "is a file. Choose another --out."
        )
    if existing.exists() and not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(
            f"Expected {flag} to be a folder panbench can write, but {existing} is not "
            "writable. Choose another --out."
        )


_CHECKS: dict[str, Callable[[Any], None]] = {
    "device": lambda v: check_device(str(v)),
}


def check_args(args: argparse.Namespace) -> None:
    """Checks every option of a parsed command line that has a check, before the command runs.

    Raises:
        ConfigError: the first option out of range, an impossible device or a bad output path.
    """
    for dest, value in vars(args).items():
        _check_range(dest, value)
        if value is None:
            continue
        if dest in _CHECKS:
            _CHECKS[dest](value)
        if dest in FOLDER_OUTPUTS and isinstance(value, Path):
            check_output_folder(value, _flag(dest))
