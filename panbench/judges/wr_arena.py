"""WR-Arena's action-simulation-fidelity rubric and its percentage, as the PAN paper reports it.

Upstream (``action_simulation_fidelity_scripts/action_simulation_fidelity_eval.py`` in
MBZUAI-IFM/WR-Arena) asks GPT-4o, at temperature 0, to rate each generated round against its
instruction on an integer 0-3 scale, showing 8 frames sampled uniformly from the round's video
(PNG, in time order, after the text). A sample (one image with one list of three instructions)
scores the mean of its rounds; the task scores the mean over samples; the paper reports that
mean as a percentage of the scale's maximum. The rubric text below is panbench's own wording of
the same four levels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from panbench.errors import DataError
from panbench.judges.base import Rubric

__all__ = ["WR_FIDELITY_RUBRIC", "fidelity_percent", "wr_instruction"]

WR_FIDELITY_RUBRIC = Rubric(
    name="wr-action-fidelity",
    version="1",
    text=(
        "The images are frames taken, in time order, from one video clip.\n"
        'Judge how well the clip carries out this instruction: "{prompt}"\n'
        "Score it on this scale:\n"
        "0 - the clip does not follow the instruction.\n"
        "1 - half right: the right object does the wrong thing, or the right action happens "
        "to the wrong object.\n"
        "2 - the clip follows the instruction and moves toward its goal, without reaching it.\n"
        "3 - the clip follows the instruction exactly and reaches its goal.\n"
        "Reply with one integer (0, 1, 2 or 3) and nothing else."
    ),
    scale=(0, 3),
    frames=8,
)


def wr_instruction(prompt: str) -> str:
    """The instruction as upstream quotes it to the judge: the prompt, ending with a period."""
    prompt = prompt.strip()
    return prompt if prompt.endswith(".") else prompt + "."


def fidelity_percent(
    scores_per_sample: Sequence[Sequence[float]], scale: tuple[int, int] = (0, 3)
) -> float:
    """WR-Arena's action-simulation fidelity as a percentage.

    Each sample's round scores are averaged, the sample means are averaged, and the mean is
    mapped linearly from ``scale`` to 0-100: ``100 * (mean - low) / (high - low)``, which for
    WR-Arena's 0-3 scale is ``100 * mean / 3``.

    Upstream groups the sample means by prompt-list position (1-3 agent, 4-6 environment)
    before averaging and rounds each group mean to two decimals; on its dataset every image has
    all six prompt lists, so the mean of the group means equals the mean over samples, and
    panbench keeps full precision. Upstream silently drops replies that are not a bare integer;
    here every sample must have at least one score (an unparsable reply fails earlier, in
    :func:`~panbench.judges.parse_score`).

    Args:
        scores_per_sample: per sample, its per-round scores on ``scale``.
        scale: the inclusive (low, high) range of the scores.

    Returns:
        The percentage in [0, 100].

    Raises:
        DataError: no samples, a sample with no scores, or a score that is not finite or
            outside ``scale``.

    Example:
        >>> fidelity_percent([[3, 2, 1], [0, 0, 3]])
        50.0
    """
    lo, hi = scale
    if not hi > lo:
        raise DataError(f"Expected scale (low, high) with low < high, but got {scale!r}.")
    if len(scores_per_sample) == 0:
        raise DataError("Expected at least one sample of fidelity scores, but got none.")
    sample_means = []
    for i, rounds in enumerate(scores_per_sample):
        values = [float(v) for v in rounds]
        if not values:
            raise DataError(f"Expected sample {i} to have at least one round score, but got none.")
        for j, v in enumerate(values):
            if not math.isfinite(v) or not lo <= v <= hi:
                raise DataError(
                    f"Expected scores in [{lo}, {hi}], but sample {i} round {j} is {rounds[j]!r}."
                )
        sample_means.append(math.fsum(values) / len(values))
    mean = math.fsum(sample_means) / len(sample_means)
    return 100.0 * (mean - lo) / (hi - lo)
