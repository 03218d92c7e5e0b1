"""sha256 digests of the quick suite's samples/*.jsonl for the four demo models.

The architecture and speed work must not change a single per-episode value: this script records
the digests once (``--write``, on the commit before a refactor) and checks them afterwards
(default). The test suite checks the baselines' digests on every run (tests/test_golden_samples.py);
pan-ref's are checked here and by the slow test.

Usage: python benchmarks/sample_digests.py [--write] [--models copy-last,oracle] [--out DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

DIGESTS = Path(__file__).resolve().parents[1] / "tests" / "golden" / "quick_sample_digests.json"
MODELS = ("copy-last", "oracle", "random-action", "pan-ref")
#: pan-ref runs row by row here (micro_batch=1), the scheme of the recorded commit: its default
#: 16-row micro-batches round differently (docs/benchmarks.md), by design, not by refactoring;
#: and with the checkpoint's 10 DDIM steps on every task, as then (its planning tasks now
#: default to one trailing step, panbench.models.pan_ref.PLANNING_SAMPLING)
MODEL_ARGS = {"pan-ref": {"micro_batch": 1, "steps": 10}}


def digests(model: str, out: Path, suite: str = "quick") -> dict[str, str]:
    """Evaluates ``model`` on ``suite`` into ``out`` and returns {task: sha256 of its samples}."""
    from panbench.harness import evaluate

    evaluate(model, MODEL_ARGS.get(model), out=out, suite=suite, progress=False)
    return {
        p.name.removesuffix(".jsonl"): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((out / "samples").glob("*.jsonl"))
        if ".part-" not in p.name
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="record instead of checking")
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args(argv)
    from panbench.threads import configure

    # One torch thread, as recorded: pan-ref's row-by-row values depend on the thread count.
    configure(1)
    recorded = json.loads(DIGESTS.read_text()) if DIGESTS.exists() else {}
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            got = digests(model, Path(tmp) / model)
            if args.write:
                recorded[model] = got
                print(f"{model}: recorded {len(got)} tasks")
                continue
            want = recorded.get(model)
            bad = [
                t for t in sorted(set(got) | set(want or {})) if got.get(t) != (want or {}).get(t)
            ]
            print(f"{model}: {'identical' if not bad else 'DIFFERENT: ' + ', '.join(bad)}")
            failed += [f"{model}/{t}" for t in bad]
    if args.write:
        DIGESTS.parent.mkdir(parents=True, exist_ok=True)
        DIGESTS.write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
