"""Per-step overhead of a served model: ``copy-last`` in-process versus through ``panbench serve``.

Batch 16 at 64x64 on loopback, one kept-alive connection: the overhead is the remote step time
minus the in-process step time (target: under 10% of copy-last's step plus a few ms).
"""

from __future__ import annotations

import statistics
import time

import numpy as np

BATCH, RES, CONTEXT = 16, 64, 2


def _step_us(model, steps: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """The median and the minimum step time in microseconds (the minimum: CPUs not contended)."""
    from panbench.envs.base import Action
    from panbench.models.api import Context

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (BATCH, CONTEXT, RES, RES, 3), dtype=np.uint8)
    actions = [Action(0, "move up")] * BATCH
    context = Context(frames=frames, actions=[actions[:1]] * BATCH, seeds=list(range(BATCH)))
    state = model.reset(context)
    times = []
    for _ in range(steps + 10):
        start = time.perf_counter()
        state, out = model.step(state, actions)
        times.append(time.perf_counter() - start)
        assert out.shape == (BATCH, 1, RES, RES, 3)
    return statistics.median(times[10:]) * 1e6, min(times[10:]) * 1e6


def run(quick: bool) -> list[dict]:
    from panbench.models.baselines import CopyLastModel
    from panbench.models.remote import RemoteModel
    from panbench.serve.process import ServerProcess

    steps = 100 if quick else 1000
    local = _step_us(CopyLastModel(), steps)
    with ServerProcess("copy-last") as server:
        remote = _step_us(RemoteModel(server.url), steps)
    case = f"copy-last step, batch {BATCH} at {RES}x{RES}, {steps} steps"
    notes = "loopback, one kept-alive connection; server and client share the CPUs"
    rows = []
    for stat, i in (("median", 0), ("minimum", 1)):
        rows += [
            {
                "bench": "remote",
                "case": f"{case}, in-process, {stat}",
                "value": round(local[i], 1),
                "unit": "µs",
            },
            {
                "bench": "remote",
                "case": f"{case}, served, {stat}",
                "value": round(remote[i], 1),
                "unit": "µs",
            },
            {
                "bench": "remote",
                "case": f"overhead per step (served - in-process), {stat}",
                "value": round(remote[i] - local[i], 1),
                "unit": "µs",
                "target": f"< {0.1 * local[i]:.0f} + a few 1000",
                "notes": notes,
            },
        ]
    return rows
