"""Shared pytest configuration: opt-in slow/gpu/weights tests and a no-network guard."""

from __future__ import annotations

import os
import socket

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


def pytest_configure(config: pytest.Config) -> None:
    # Each xdist worker gets its share of the CPUs (threads spinning on a shared core slow the
    # whole suite ~10x); an explicit PANBENCH_THREADS/OMP_NUM_THREADS still wins.
    from panbench.threads import ENV_VAR, TORCH_ENV_VARS, configure, usable_cpus

    if os.environ.get("PYTEST_XDIST_WORKER") is None and getattr(
        config.option, "numprocesses", None
    ):
        return  # the xdist controller: its environment is inherited by the workers
    if not any(os.environ.get(v) for v in (ENV_VAR, *TORCH_ENV_VARS)):
        workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
        os.environ[ENV_VAR] = str(max(1, usable_cpus() // workers))
    configure()
    config.addinivalue_line(
        "markers", "weights: needs real pretrained weight files (skipped when absent)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_slow = pytest.mark.skip(reason="slow test: run with --runslow")
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception:  # torch missing or broken: GPU tests cannot run either way
        has_cuda = False
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "slow" in item.keywords and not config.getoption("--runslow"):
            item.add_marker(skip_slow)
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # A run that collected nothing must not look green in CI.
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print("\nerror: pytest collected no tests; failing instead of passing silently")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never touch the network: any outbound connection attempt fails loudly."""

    def guard(*args: object, **kwargs: object) -> None:
        raise RuntimeError("tests must not use the network (socket.connect was called)")

    monkeypatch.setattr(socket.socket, "connect", guard)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
