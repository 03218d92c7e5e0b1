"""Where `evaluate` spends its time: pan-ref on each quick task, split by component.

Runs the quick suite under cProfile in one process (start-up imports timed apart) and attributes
each task's time to: the backbone f and the DDIM decoder g (model forward), VAE decoding of
latents to frames, VAE encoding (context and re-encoding of generated frames), metrics, envs
(simulation, rendering, perception), and the rest (harness, protocols, planning search, Python).
The attribution uses the cumulative time of the functions named below; the rest is the task's
time minus them. Prints a markdown table for docs/benchmarks.md.

Usage: python benchmarks/profile_evaluate.py [--model pan-ref] [--limit N]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from pathlib import Path

import yaml

#: component -> (file suffix, function name) pairs whose cumulative time it owns
COMPONENTS: dict[str, tuple[tuple[str, str], ...]] = {
    "model forward (f + DDIM g)": (("reference_model/model.py", "predict_step"),),
    "VAE decode": (("reference_model/model.py", "decode_latents"),),
    "VAE encode (context + re-encode)": (("reference_model/model.py", "encode_frames"),),
    # outermost calls only (nested ones would count twice)
    "metrics": (
        ("panbench/protocols/rollout.py", "_score"),
        ("panbench/protocols/choice.py", "_distance"),
        ("panbench/planning/scoring.py", "__call__"),
    ),
    "envs (episodes, references)": (
        ("panbench/data/episodes.py", "make_episode"),
        ("panbench/protocols/closed_loop.py", "random_reference"),
    ),
}


def _cumulative(stats: pstats.Stats, wanted: tuple[tuple[str, str], ...]) -> float:
    total = 0.0
    for (path, _line, name), row in stats.stats.items():  # type: ignore[attr-defined]
        if any(path.endswith(suffix) and name == fn for suffix, fn in wanted):
            total += row[3]  # cumulative seconds (recursion counted once by cProfile)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="pan-ref")
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()

    start = time.perf_counter()
    from panbench.harness import evaluate
    from panbench.models.registry import load_model
    from panbench.suite import load_suite

    load_model(args.model)  # imports the model's stack (torch, diffusers, transformers)
    startup = time.perf_counter() - start
    rows = [("(start-up: imports and model load)", startup, {})]
    for task in load_suite("quick").tasks:
        # quick's version of the task (its overrides applied), as a task file of its own
        path = Path(tempfile.mkdtemp()) / f"{task.name}.yaml"
        path.write_text(yaml.safe_dump(task.to_dict(), sort_keys=False))
        profile = cProfile.Profile()
        t0 = time.perf_counter()
        profile.enable()
        evaluate(
            args.model,
            out=path.parent / "run",
            tasks=[str(path)],
            limit=args.limit,
            progress=False,
        )
        profile.disable()
        seconds = time.perf_counter() - t0
        stats = pstats.Stats(profile)
        parts = {name: _cumulative(stats, fns) for name, fns in COMPONENTS.items()}
        rows.append((task.name, seconds, parts))
    names = list(COMPONENTS)
    print("| task | total s | " + " | ".join(names) + " | rest (harness, Python) |")
    print("| --- | ---: |" + " ---: |" * (len(names) + 1))
    for task, seconds, parts in rows:
        if not parts:
            print(f"| {task} | {seconds:.1f} |" + " |" * (len(names) + 1))
            continue
        rest = seconds - sum(parts.values())
        cells = [f"{parts[n]:.1f} ({100 * parts[n] / seconds:.0f}%)" for n in names]
        print(f"| {task} | {seconds:.1f} | " + " | ".join(cells) + f" | {rest:.1f} |")


if __name__ == "__main__":
    main()
