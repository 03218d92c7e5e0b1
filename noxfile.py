"""nox sessions: tests, lint, typecheck, bench, demo. CPU installs use constraints/cpu.txt."""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True
nox.options.default_venv_backend = "venv"

CONSTRAINTS = ["-c", "constraints/cpu.txt"]
PYTHON = os.environ.get("PANBENCH_NOX_PYTHON")  # None: the interpreter running nox


def _install(session: nox.Session, extras: str = "dev,model") -> None:
    # Constrained so pip takes the CPU torch wheel instead of the multi-GB CUDA build.
    session.install(*CONSTRAINTS, "-e", f".[{extras}]")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Runs the test suite (pass extra pytest args after --, e.g. -- --runslow)."""
    _install(session)
    workers = os.environ.get("PANBENCH_TEST_WORKERS", "auto")
    session.run("pytest", "-n", workers, *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check and format check."""
    session.install("ruff")
    session.run("ruff", "check", "panbench", "reference_model", "tests", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "panbench", "reference_model", "tests", "benchmarks")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy over the package."""
    _install(session)
    session.install("mypy", "types-PyYAML")
    session.run("mypy")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Speed and memory benchmarks; results go to docs/benchmarks.md (pass --write to update it)."""
    _install(session)
    session.run("python", "benchmarks/run.py", *session.posargs)


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """Installs panbench and runs the offline demo on the embedded default."""
    _install(session, extras="model")
    session.run("panbench", "demo", *session.posargs)
