"""A fake WR-Arena checkout in the upstream layout, written by the tests (no upstream data).

The layout and field names follow WR-Arena's ``datasets/`` folder: JSON lists for action
fidelity and smoothness (image paths relative to the samples file), JSONL for step-wise and
structured planning (paths relative to the checkout, starting ``datasets/``), goal images in
``samples_vjepa2.json``. Images are small non-square PNGs so the aspect rule is exercised.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

FIDELITY = "datasets/action_simulation_fidelity_subset"
SMOOTHNESS = "datasets/smoothness_eval"
STEPWISE = "datasets/simulative_reasoning_planning/step_wise_simulation_subset"
PLANNING = "datasets/simulative_reasoning_planning/structured_simulation_planning"


def write_png(path: Path, seed: int, size: tuple[int, int] = (48, 32), mode: str = "RGB") -> None:
    """A random image of ``size`` (width, height)."""
    rng = np.random.default_rng(seed)
    w, h = size
    channels = 4 if mode == "RGBA" else 3
    arr = rng.integers(0, 256, size=(h, w, channels), dtype=np.uint8)
    if channels == 4:
        arr[..., 3] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode=mode).save(path)


@dataclass
class FakeTree:
    """What was written, so tests compare the importer's counts with the files."""

    root: Path
    listed: dict[str, int] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)
    #: step-wise: per sample, the 1-based answer and the 1-based choice equal to the source
    stepwise_answers: list[int] = field(default_factory=list)
    stepwise_copy: list[int] = field(default_factory=list)


def write_fake_wr_arena(root: Path, *, images: int = 2, smoothness_missing: int = 1) -> FakeTree:
    """Writes the fake checkout under ``root`` and returns what it holds."""
    tree = FakeTree(root=root)
    # --- action simulation fidelity: ids <image>_<1..6>, three prompts each
    fid = []
    for img in range(images):
        write_png(root / FIDELITY / "initial_state" / f"{img:03d}.png", seed=100 + img)
        for k in range(1, 7):
            kind = "agent" if k <= 3 else "env"
            fid.append(
                {
                    "id": f"{kind}_{img:03d}_{k}",
                    "image_path": f"initial_state/{img:03d}.png",
                    "prompt_list": [f"{kind} {img} list {k} round {r}" for r in range(3)],
                }
            )
    (root / FIDELITY / "samples_subset.json").write_text(json.dumps(fid, indent=1))
    tree.listed["wr-action-fidelity"] = len(fid)
    tree.missing["wr-action-fidelity"] = 0
    # --- smoothness: ten prompts each; the last `smoothness_missing` images are not shipped
    smooth = []
    n_smooth = 3
    for i in range(n_smooth):
        rel = f"static/photorealistic/outdoor/diverse/{i:03d}_1.png"
        if i < n_smooth - smoothness_missing:
            write_png(root / SMOOTHNESS / rel, seed=200 + i, size=(40, 24))
        smooth.append(
            {
                "id": f"sm_{i:03d}",
                "image_path": rel,
                "prompt_list": [f"scene {i} round {r}" for r in range(10)],
                "camera_path": ["pan_right"] * 9,
            }
        )
    (root / SMOOTHNESS / "samples.json").write_text(json.dumps(smooth, indent=1))
    tree.listed["wr-smoothness"] = n_smooth
    tree.missing["wr-smoothness"] = smoothness_missing
    # --- step-wise: four choices; one of them is the source itself (what copy-last predicts)
    lines = []
    for i in range(4):
        src = f"{STEPWISE}/sources/s{i}_source_0.png"
        write_png(root / src, seed=300 + i, size=(32, 24), mode="RGBA")
        copy_at = 1 + (i % 4)
        choices = []
        for c in range(1, 5):
            rel = f"{STEPWISE}/image_choices/s{i}_image_choices_{c}.png"
            if c == copy_at:
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_bytes((root / src).read_bytes())
            else:
                write_png(root / rel, seed=400 + 10 * i + c, size=(32, 24), mode="RGBA")
            choices.append(rel)
        best = copy_at if i % 2 == 0 else 1 + (copy_at % 4)
        tree.stepwise_answers.append(best)
        tree.stepwise_copy.append(copy_at)
        lines.append(
            {
                "id": f"Compositionality_lift/s{i}",
                "prompt": f"the arms lift object {i}",
                "source": src,
                "image_choices": choices,
                "best": best,
            }
        )
    (root / STEPWISE / "samples.jsonl").write_text("\n".join(json.dumps(x) for x in lines))
    tree.listed["wr-stepwise"] = len(lines)
    tree.missing["wr-stepwise"] = 0
    # --- structured planning: goal text, budget; goal images in samples_vjepa2.json
    plans, goals = [], []
    for i in range(2):
        img = f"{PLANNING}/scene_{i}.png"
        goal_img = f"{PLANNING}/goal_state/{i}.png"
        write_png(root / img, seed=500 + i, size=(40, 22))
        # Black goals: a model that darkens the scene moves toward them (planning tests).
        (root / goal_img).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (20, 11)).save(root / goal_img)
        plans.append(
            {
                "episode": f"scene_{i}",
                "goal": "Arrange all blocks in a line.",
                "image_path": img,
                "output_dir": "outputs/x",
                "max_action": 2 + i,
            }
        )
        goals.append(
            {
                "episode": f"scene_{i}",
                "goal": "Arrange all blocks in a line",
                "input_state": img,
                "goal_state": goal_img,
                "max_action": 2 + i,
            }
        )
    (root / PLANNING / "samples.jsonl").write_text("\n".join(json.dumps(x) for x in plans))
    (root / PLANNING / "samples_vjepa2.json").write_text(json.dumps(goals))
    tree.listed["wr-structured-planning"] = len(plans)
    tree.missing["wr-structured-planning"] = 0
    return tree
