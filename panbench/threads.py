"""How many CPU threads panbench gives torch: the CPUs this process may really use, not the box's.

torch sizes its intra-op pool from the machine's core count and its OpenMP threads spin while
they wait. On a shared machine (CI runners, a laptop compiling in the background, several
evaluations side by side) a spinning pool that is larger than the CPUs left idle makes every
kernel wait for a descheduled thread: evaluation slows by ~10x instead of ~2x. The policy here:

1. an explicit request wins (``--threads N``, then ``PANBENCH_THREADS``, then the usual
   ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` that torch reads itself);
2. otherwise the usable CPUs: the process's affinity mask, capped by a cgroup CPU quota
   (containers), divided among the processes of a ``torchrun`` job on this node, minus the CPUs
   other processes keep busy right now (the run queue in ``/proc/loadavg``), at least one;
3. the plan is made before torch is first imported where possible (the CLI calls
   :func:`configure` first), so torch's pools start at the chosen size.

OpenMP's wait policy is left alone: making idle threads sleep (``OMP_WAIT_POLICY=PASSIVE``)
rescues an oversubscribed pool but makes every small kernel on a quiet machine pay a wake-up
(pan-tiny's UNet: 24 ms instead of 8 ms per one-row call, measured; docs/benchmarks.md). Sizing
the pool to the idle CPUs avoids the oversubscription instead.

:func:`configure` returns a :class:`ThreadPlan` saying what it chose and why; ``evaluate`` records
it in results.json (``threads``) and benchmarks print it.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from panbench.errors import ConfigError

ENV_VAR = "PANBENCH_THREADS"
#: variables torch (OpenMP/MKL) reads itself; when set, panbench follows them
TORCH_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class ThreadPlan:
    """What :func:`configure` chose.

    Attributes:
        intra_op: torch's intra-op threads (``torch.set_num_threads``).
        inter_op: torch's inter-op threads (panbench runs one op at a time: 1).
        usable_cpus: CPUs this process may use (affinity, cgroup quota, torchrun share).
        busy_cpus: CPUs other processes kept busy when the plan was made (0 when asked).
        source: why: ``"--threads"``, ``"PANBENCH_THREADS"``, ``"OMP_NUM_THREADS"``, ... or
            ``"usable CPUs"``.
    """

    intra_op: int
    inter_op: int
    usable_cpus: int
    busy_cpus: int
    source: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        busy = f", {self.busy_cpus} busy elsewhere" if self.busy_cpus else ""
        return (
            f"{self.intra_op} torch thread{'s' if self.intra_op != 1 else ''} "
            f"({self.source}; {self.usable_cpus} usable CPU{'s' if self.usable_cpus != 1 else ''}"
            f"{busy})"
        )


def _cgroup_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs allowed by a cgroup CPU quota (v2 ``cpu.max`` or v1 ``cfs_quota_us``), or None."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        if quota != "max":
            return int(quota) / int(period)
        return None
    except (OSError, ValueError):
        pass
    try:
        q = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        p = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return q / p if q > 0 and p > 0 else None
    except (OSError, ValueError):
        return None


def usable_cpus(cgroup_root: Path = Path("/sys/fs/cgroup")) -> int:
    """CPUs this process may run on: affinity mask, capped by a cgroup quota and shared with
    the other ``torchrun`` processes on this node (``LOCAL_WORLD_SIZE``)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cpus = os.cpu_count() or 1
    quota = _cgroup_quota(cgroup_root)
    if quota is not None:
        cpus = min(cpus, max(1, math.floor(quota)))
    local = os.environ.get("LOCAL_WORLD_SIZE")
    if local and local.isdigit() and int(local) > 1:
        cpus = max(1, cpus // int(local))
    return max(1, cpus)


def busy_cpus(loadavg: Path = Path("/proc/loadavg")) -> int:
    """CPUs that other processes keep busy now: the running tasks of ``/proc/loadavg`` less
    this one (0 where the file does not exist)."""
    try:
        running = int(loadavg.read_text().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return 0
    return max(0, running - 1)


def _parse(value: str, where: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise ConfigError(f"Expected {where} to be an integer >= 1, but got {value!r}.")
    return n


def plan_threads(requested: int | None = None) -> ThreadPlan:
    """Chooses the thread counts without applying them (see the module docstring)."""
    cpus = usable_cpus()
    if requested is not None:
        return ThreadPlan(_parse(str(requested), "--threads"), 1, cpus, 0, "--threads")
    if os.environ.get(ENV_VAR):
        return ThreadPlan(_parse(os.environ[ENV_VAR], ENV_VAR), 1, cpus, 0, ENV_VAR)
    for var in TORCH_ENV_VARS:
        if os.environ.get(var):
            return ThreadPlan(_parse(os.environ[var], var), 1, cpus, 0, var)
    busy = busy_cpus()
    return ThreadPlan(max(1, cpus - busy), 1, cpus, busy, "usable CPUs")


_applied: ThreadPlan | None = None


def configure(requested: int | None = None) -> ThreadPlan:
    """Chooses and applies the thread plan; call before torch is imported where possible.

    Sets ``OMP_NUM_THREADS`` for libraries that read it at import, and, if torch is already
    imported, its intra/inter-op pools. Calling it
    again with no explicit request keeps the first plan.

    Raises:
        ConfigError: ``requested`` or ``PANBENCH_THREADS`` is not an integer >= 1.
    """
    global _applied
    if requested is None and _applied is not None:
        return _applied
    plan = plan_threads(requested)
    if "torch" not in sys.modules:
        # Read by OpenMP when torch first loads it; torch's pools then start at this size.
        os.environ["OMP_NUM_THREADS"] = str(plan.intra_op)
    else:
        import torch

        torch.set_num_threads(plan.intra_op)
        # Only settable before the first inter-op parallel work; harmless to skip after.
        with contextlib.suppress(RuntimeError):
            torch.set_num_interop_threads(plan.inter_op)
    _applied = plan
    return plan


def current() -> ThreadPlan | None:
    """The plan :func:`configure` applied in this process, if any."""
    return _applied
