"""Every shipped task and suite hashes exactly as on the commit before the architecture work."""

from __future__ import annotations

import json
from pathlib import Path

from panbench.suite import list_suites, list_tasks, load_suite, load_task

GOLDEN = Path(__file__).parent / "golden" / "shipped_task_hashes.json"


def _hashes() -> dict[str, str]:
    out = {name: load_task(name).hash for name, *_ in list_tasks()}
    for name, *_ in list_suites():
        suite = load_suite(name)
        out[f"suite:{name}"] = suite.hash
        out.update({f"suite:{name}/{t.name}": t.hash for t in suite.tasks})
    return out


def test_shipped_task_and_suite_hashes_are_unchanged() -> None:
    recorded = json.loads(GOLDEN.read_text())
    now = _hashes()
    changed = {k: (v, now.get(k)) for k, v in recorded.items() if now.get(k) != v}
    assert not changed, f"recorded hash -> hash now: {changed}"
    # A new task or suite is recorded when it ships, so that later changes to it are caught.
    assert not set(now) - set(recorded), f"not recorded: {sorted(set(now) - set(recorded))}"
