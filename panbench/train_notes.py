"""What a ``panbench train`` run leaves untrained: the stage plan and the warning for a cut run.

A classic-recipe run trains in two stages (the autoencoder h, then the dynamics f and decoder g);
``--max-steps`` may stop it inside either. The exported model then works, but predicts with
untrained or part-trained networks, so the command says so before it starts and again when it
writes the model. Open-weights configs train one stage each (``train.stage``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Stage:
    """One training stage: its name, what it trains and its global steps ``[start, end)``."""

    name: str
    trains: str
    start: int
    end: int


def stage_plan(run: dict[str, Any]) -> list[Stage]:
    """The stages of a training config (the resolved config as a dict: ``cfg.to_dict()``).

    Example:
        >>> [s.end for s in stage_plan({"train": {"ae_steps": 10, "steps": 5}})]
        [10, 15]
    """
    train = run.get("train", {})
    if "stage" in train:  # open-weights: one stage per run
        trains = "the decoder g" if int(train["stage"]) == 1 else "f, g and the projections"
        return [Stage(f"stage {train['stage']}", trains, 0, int(train["steps"]))]
    ae = int(train.get("ae_steps", 0))
    stages = []
    if ae > 0:
        stages.append(Stage("stage 1 (autoencoder)", "the encoder h", 0, ae))
    steps = int(train.get("steps", 0))
    stages.append(Stage("stage 2 (dynamics)", "the backbone f and decoder g", ae, ae + steps))
    return stages


def cut_short(plan: list[Stage], stop: int) -> str | None:
    """The warning for a run that stops at global step ``stop``, or None when every stage ends.

    Example:
        >>> plan = stage_plan({"train": {"ae_steps": 1600, "steps": 1200}})
        >>> print(cut_short(plan, 30))  # doctest: +NORMALIZE_WHITESPACE
        training stops at step 30 of 2800, inside stage 1 (autoencoder) (30 of 1600 steps): stage
        2 (dynamics) is not trained at all, so the backbone f and decoder g of the exported model
        are untrained and its predictions are not meaningful. Drop --max-steps (or rerun with
        --resume) to train every stage.
    """
    total = plan[-1].end
    if stop >= total:
        return None
    inside = next(s for s in plan if s.start <= stop < s.end)
    untrained = [s for s in plan if s.start >= stop and s is not inside]
    text = (
        f"training stops at step {stop} of {total}, inside {inside.name} "
        f"({stop - inside.start} of {inside.end - inside.start} steps)"
    )
    if untrained:
        names = ", ".join(s.name for s in untrained)
        trains = " and ".join(s.trains for s in untrained)
        verb = "is" if len(untrained) == 1 else "are"
        text += (
            f": {names} {verb} not trained at all, so {trains} of the exported model "
            "are untrained and its predictions are not meaningful."
        )
    else:
        text += f", so {inside.trains} of the exported model may be far from converged."
    return text + " Drop --max-steps (or rerun with --resume) to train every stage."


def config_plan(config: str | Path) -> list[Stage]:
    """The stage plan of a training config file, read with its recipe's loader."""
    from reference_model.recipes import config_recipe

    cfg = config_recipe(config).load_config(config)
    return stage_plan(cfg.to_dict())


def exported_warning(model_dir: str | Path) -> str | None:
    """The warning for an exported model whose ``config.json`` records a cut run, else None."""
    path = Path(model_dir) / "config.json"
    try:
        training = json.loads(path.read_text(encoding="utf-8")).get("training") or {}
    except (OSError, ValueError):
        return None
    if "step" not in training or "run" not in training:
        return None
    return cut_short(stage_plan(training["run"]), int(training["step"]))


def warn_before(config: str | Path, max_steps: int | None, console: Any) -> None:
    """Prints the cut-run warning before training starts (nothing when every stage will run)."""
    if max_steps is None:
        return
    text = cut_short(config_plan(config), max_steps)
    if text is not None:
        from rich.markup import escape

        console.print(f"[bold yellow]warning:[/] {escape(text)}", soft_wrap=True)


def warn_after(model_dir: str | Path, console: Any) -> None:
    """Prints the cut-run warning again beside "model written" (nothing for a full run)."""
    text = exported_warning(model_dir)
    if text is not None:
        from rich.markup import escape

        console.print(f"[bold yellow]warning: not fully trained:[/] {escape(text)}", soft_wrap=True)
