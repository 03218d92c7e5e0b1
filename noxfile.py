"""nox sessions: tests, lint, typecheck, bench, demo, browser. CPU installs use constraints/cpu.txt."""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True
nox.options.default_venv_backend = "venv"

CONSTRAINTS = ["-c", "constraints/cpu.txt"]
PYTHON = os.environ.get("PANBENCH_NOX_PYTHON")  # None: the interpreter running nox


def _install(
    session: nox.Session, extras: str = "dev,model,wr,i2v,physics,data,serve,atari,pusht"
) -> None:
    # Constrained so pip takes the CPU torch wheel instead of the multi-GB CUDA build.
    session.install(*CONSTRAINTS, "-e", f".[{extras}]")
    if "atari" in extras.split(","):
        # OCAtari's metadata pins numpy<2 (and GUI packages); the parts panbench imports run on
        # numpy 2, and the `atari` extra brings what they import, so it goes in without its deps.
        session.install(*CONSTRAINTS, "--no-deps", "ocatari")
    if "pusht" in extras.split(","):
        # gym-pusht pins the GUI opencv-python < 5, which clashes with the headless OpenCV;
        # its other requirements come with the `pusht` extra.
        session.install(*CONSTRAINTS, "--no-deps", "gym-pusht")


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
    """Installs panbench and runs the offline demo on the embedded default; times both parts."""
    import time

    start = time.perf_counter()
    _install(session, extras="model")
    session.log(f"set-up took {time.perf_counter() - start:.0f} s")
    start = time.perf_counter()
    session.run("panbench", "demo", *session.posargs)
    session.log(f"demo took {time.perf_counter() - start:.0f} s (set-up not included)")


# Run inside the session's Python: the screenshot must be a real render, not a blank page.
_CHECK_SCREENSHOT = """
import sys
import matplotlib.image
img = matplotlib.image.imread(sys.argv[1])
assert img.ndim == 3 and img.shape[0] >= 800 and img.shape[1] >= 1000, img.shape
assert img[..., :3].std() > 0.02, "the screenshot is blank"
print(f"screenshot {img.shape[1]}x{img.shape[0]}")
"""


@nox.session(python=PYTHON)
def browser(session: nox.Session) -> None:
    """Checks built leaderboard pages in headless Debian chromium (not a default session).

    Builds a copy of the leaderboard folder given after ``--`` (default leaderboards/quick) and
    checks its index and task pages at two widths (tests/browser_layout.py); screenshots go to
    build/browser. Installs chromium with apt-get only when it is missing.
    """
    import shutil
    from pathlib import Path

    session.install(*CONSTRAINTS, "-e", ".")  # building a page needs no extra
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        session.run(*sudo, "apt-get", "update", external=True)
        session.run(
            *sudo, "apt-get", "install", "-y", "--no-install-recommends", "chromium", external=True
        )
        chromium = shutil.which("chromium")
    if chromium is None:
        session.error("chromium is still missing after apt-get install")
    board = Path(session.posargs[0] if session.posargs else "leaderboards/quick")
    out = Path("build/browser").resolve()
    # Builds a copy, then loads the index and two task pages at 1280 and 1920 px: no sideways
    # scrolling, every column visible, every image loaded; screenshots stay in build/browser.
    session.run("python", "tests/browser_layout.py", str(board), str(out))
    session.run("python", "-c", _CHECK_SCREENSHOT, str(out / "index-1280.png"))
    session.log(f"screenshots: {out}/*.png")
