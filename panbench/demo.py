"""The offline demo behind `panbench demo` (and `nox -s demo`): a short evaluation of the built-in
baselines on the embedded `quick` suite, plus a contact sheet of every env's frames."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

DEMO_MODELS = ("oracle", "random-action", "copy-last", "pan-ref")  # pan-ref: shipped pan-tiny


def contact_sheet(out: Path, steps: int = 6, resolution: int = 64, seed: int = 0) -> Path:
    """Renders ``steps`` frames of a random rollout of each env, one row per env, to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from panbench.envs import ENVS, make

    names = ENVS.names()
    fig, axes = plt.subplots(len(names), steps, figsize=(1.4 * steps, 1.5 * len(names)))
    for row, name in enumerate(names):
        env = make(name, resolution=resolution)
        rng = np.random.default_rng(seed)
        state = env.reset(seed)
        for col in range(steps):
            ax = axes[row, col]
            ax.imshow(env.render(state), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 0:
                ax.set_ylabel(name)
            action = env.random_action(state, rng)
            ax.set_title(f"then: {action.text}", fontsize=5)
            state = env.step(state, action)
    fig.tight_layout()
    path = out / "envs.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def demo_table(results: dict[str, Any], seconds: dict[str, float], limit: int) -> Any:
    """The demo's table: per task and model, the headline score with its 95% CI."""
    from rich.table import Table

    from panbench.plots import headline_scores, rank_order, suite_task_order
    from panbench.report import suite_ci
    from panbench.results_model import as_results

    # The leaderboard's order: models best suite score first, tasks as the suite lists them.
    typed = [(m, as_results(r)) for m, r in results.items()]
    models = [typed[i][0] for i in rank_order(typed)]
    table = Table(
        title=f"quick suite, headline scores (0-100) [95% CI], {limit} episodes per task",
        caption="a preview: CIs are wide at this size; not comparable to full runs",
    )
    table.add_column("task", no_wrap=True)
    for model in models:
        table.add_column(model, justify="right")
    heads = {m: headline_scores(results[m]) for m in models}
    for task in suite_task_order(typed[0][1]):
        table.add_row(task, *[_cell(heads[m][task]) for m in models])
    suite = [suite_ci(list(heads[m].values())) for m in models]
    table.add_row("[bold]suite (mean)[/]", *[_cell_of(*s) for s in suite])
    table.add_row(
        "[dim]seconds[/]", *[f"{seconds[m]:.0f}" if m in seconds else "-" for m in models]
    )
    return table


def _cell(head: Any) -> str:
    return _cell_of(head.score, head.low, head.high)


def _cell_of(score: float, low: float, high: float) -> str:
    if not math.isfinite(score):
        return "-"
    if not math.isfinite(low):
        return f"{score:.1f}"
    return f"{score:.1f}\n[{low:.0f}, {high:.0f}]"  # the CI under the score: narrow columns


def run_demo(out: Path, console: Any = None, limit: int = 4) -> dict[str, Any]:
    """Evaluates the built-in baselines on ``quick`` (``limit`` episodes per task) into ``out``.

    Returns:
        ``{model: results dict}``.
    """
    from rich.console import Console

    from panbench.harness import evaluate
    from panbench.progress import Reporter
    from panbench.threads import configure

    console = console or Console()
    out.mkdir(parents=True, exist_ok=True)
    plan = configure()
    console.print(
        f"[bold]panbench demo[/]: {len(DEMO_MODELS)} models on the quick suite, {limit} "
        f"episodes per task, {plan.describe()}"
    )
    reporter = Reporter(console)
    reporter.overall(len(DEMO_MODELS), "models")
    all_results = {}
    seconds: dict[str, float] = {}
    for model in DEMO_MODELS:
        start = time.perf_counter()
        all_results[model] = evaluate(
            model, out=out / model, suite="quick", limit=limit, console=console, progress=reporter
        )
        seconds[model] = time.perf_counter() - start
        reporter.overall_advance()
    reporter.close()
    console.print(demo_table(all_results, seconds, limit))
    console.print(
        f"These are {limit}-episode previews, not comparable to full runs (the README's "
        "standings): `panbench evaluate --model pan-ref --suite quick --out runs/pan-ref` "
        "scores every episode."
    )
    sheet = contact_sheet(out)
    console.print(f"results: {out}/<model>/results.json; env frames: {sheet}")
    console.print(f"demo finished in {sum(seconds.values()):.0f} s")
    return all_results
