"""Runs every ``benchmarks/bench_*.py`` and prints (or, with --write, records) the results.

Each bench module defines ``run(quick: bool) -> list[dict]``; a row has the keys ``bench``,
``case``, ``value``, ``unit`` and optionally ``target`` (a human-readable goal such as
``">= 20000"``) and ``notes``. ``--write`` rewrites the generated table in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
DOC = ROOT.parent / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def _load(path: Path):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_isolated(module: Any, quick: bool) -> list[dict]:
    """``module.run(quick)``, then the process's CPU affinity and torch's thread count as they
    were before: a bench that pins itself to one core must not pin the benches after it."""
    import torch

    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    threads = torch.get_num_threads()
    try:
        return list(module.run(quick=quick))
    finally:
        if affinity is not None and os.sched_getaffinity(0) != affinity:
            os.sched_setaffinity(0, affinity)
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def _machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    return (
        f"{platform.system()} {cpu}, {os.cpu_count()} logical CPUs, Python "
        f"{platform.python_version()}, torch {torch.__version__}, "
        f"torch threads {torch.get_num_threads()}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("only", nargs="*", help="bench module names to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()

    rows: list[dict] = []
    for path in sorted(ROOT.glob("bench_*.py")):
        if args.only and path.stem not in args.only and path.stem[6:] not in args.only:
            continue
        print(f"running {path.stem} ...", flush=True)
        rows.extend(run_isolated(_load(path), args.quick))

    header = [
        "| bench | case | value | unit | target | notes |",
        "| --- | --- | ---: | --- | --- | --- |",
    ]
    lines = []
    for r in rows:
        value = r["value"]
        shown = f"{value:,.1f}" if isinstance(value, float) else str(value)
        lines.append(
            f"| {r['bench']} | {r['case']} | {shown} | {r['unit']} | "
            f"{r.get('target', '')} | {r.get('notes', '')} |"
        )
    print("\n".join([f"Machine: {_machine()}", "", *header, *lines]))
    if args.write:
        text = DOC.read_text() if DOC.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
        head, _, rest = text.partition(BEGIN)
        old, _, tail = rest.partition(END)
        # Keep the rows of benches that were not rerun; replace the others.
        rerun = {r["bench"] for r in rows}
        kept = [
            line
            for line in old.splitlines()
            if line.startswith("| ")
            and line not in header
            and line.split("|")[1].strip() not in rerun
        ]
        table = "\n".join([f"Machine: {_machine()}", "", *header, *kept, *lines])
        DOC.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}")
        print(f"updated {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
