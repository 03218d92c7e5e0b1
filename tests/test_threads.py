"""The thread policy: explicit requests win, else the CPUs this process may use and that are idle."""

from __future__ import annotations

from pathlib import Path

import pytest

from panbench import threads
from panbench.errors import ConfigError


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for var in (threads.ENV_VAR, *threads.TORCH_ENV_VARS, "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_cgroup_v2_quota(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert threads._cgroup_quota(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert threads._cgroup_quota(tmp_path) is None


def test_cgroup_v1_quota(tmp_path: Path) -> None:
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("300000")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000")
    assert threads._cgroup_quota(tmp_path) == 3.0


def test_usable_cpus_takes_affinity_quota_and_torchrun_share(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5, 6, 7})
    assert threads.usable_cpus(tmp_path) == 8
    (tmp_path / "cpu.max").write_text("250000 100000\n")
    assert threads.usable_cpus(tmp_path) == 2  # a 2.5-CPU quota: 2 whole threads
    clean_env.setenv("LOCAL_WORLD_SIZE", "4")
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert threads.usable_cpus(tmp_path) == 2  # 8 CPUs shared by 4 ranks


def test_busy_cpus_reads_the_run_queue(tmp_path: Path) -> None:
    f = tmp_path / "loadavg"
    f.write_text("1.50 1.20 0.90 3/412 12345\n")
    assert threads.busy_cpus(f) == 2  # three running, one of them us
    f.write_text("0.00 0.00 0.00 1/100 1\n")
    assert threads.busy_cpus(f) == 0
    assert threads.busy_cpus(tmp_path / "missing") == 0


def test_plan_precedence(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setattr(threads, "usable_cpus", lambda: 4)
    clean_env.setattr(threads, "busy_cpus", lambda: 1)
    plan = threads.plan_threads()
    assert (plan.intra_op, plan.busy_cpus, plan.source) == (3, 1, "usable CPUs")
    clean_env.setattr(threads, "busy_cpus", lambda: 9)
    assert threads.plan_threads().intra_op == 1  # never zero
    clean_env.setenv("OMP_NUM_THREADS", "2")
    assert threads.plan_threads().source == "OMP_NUM_THREADS"
    clean_env.setenv(threads.ENV_VAR, "3")
    assert (threads.plan_threads().intra_op, threads.plan_threads().source) == (
        3,
        "PANBENCH_THREADS",
    )
    plan = threads.plan_threads(5)
    assert (plan.intra_op, plan.inter_op, plan.source) == (5, 1, "--threads")
    assert "5 torch threads" in plan.describe()


@pytest.mark.parametrize("bad", ["0", "-1", "two"])
def test_bad_requests_are_refused(clean_env: pytest.MonkeyPatch, bad: str) -> None:
    clean_env.setenv(threads.ENV_VAR, bad)
    with pytest.raises(ConfigError, match="Expected PANBENCH_THREADS to be an integer >= 1"):
        threads.plan_threads()
    with pytest.raises(ConfigError, match="--threads"):
        threads.plan_threads(0)


def test_configure_applies_to_torch(clean_env: pytest.MonkeyPatch) -> None:
    import torch

    before = torch.get_num_threads()
    clean_env.setattr(threads, "_applied", None)
    try:
        plan = threads.configure(1)
        assert torch.get_num_threads() == 1 == plan.intra_op
        assert threads.current() == plan
        assert threads.configure() is plan  # no request: the first plan stays
    finally:
        torch.set_num_threads(before)
