"""benchmarks/run.py: a bench that pins the process leaves the next bench unpinned."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
import torch

from tests.scripts import load_script

pytestmark = pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs CPU affinity (Linux) and at least two usable cores",
)


def _pinning_bench(fail: bool) -> SimpleNamespace:
    def run(quick: bool) -> list[dict]:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        torch.set_num_threads(1)
        if fail:
            raise RuntimeError("bench failed")
        return [{"bench": "pin", "case": "x", "value": 1.0, "unit": "u", "quick": quick}]

    return SimpleNamespace(run=run)


@pytest.mark.parametrize("fail", [False, True])
def test_affinity_and_threads_are_restored(fail: bool) -> None:
    runner = load_script("run")
    affinity, threads = os.sched_getaffinity(0), torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        if fail:
            with pytest.raises(RuntimeError, match="bench failed"):
                runner.run_isolated(_pinning_bench(fail), True)
        else:
            rows = runner.run_isolated(_pinning_bench(fail), True)
            assert rows == [{"bench": "pin", "case": "x", "value": 1.0, "unit": "u", "quick": True}]
        assert os.sched_getaffinity(0) == affinity
        assert torch.get_num_threads() == 2
    finally:
        os.sched_setaffinity(0, affinity)
        torch.set_num_threads(threads)


def test_the_atari_bench_gives_its_core_back() -> None:
    atari = load_script("bench_atari")
    affinity = os.sched_getaffinity(0)
    with atari._pinned() as note:
        assert note == "affinity 1 core"
        assert len(os.sched_getaffinity(0)) == 1
    assert os.sched_getaffinity(0) == affinity
