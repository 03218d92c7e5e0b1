"""The metric catalogue's table: one entry for every metric any protocol reports.

Protocols name metrics from here; they never define them. Headline divisors reproduce the
scores the protocols computed before the catalogue existed: fractions count 1.0 as perfect,
PSNR 50 dB; lower-is-better and unbounded metrics give no 0-100 score.
"""

from __future__ import annotations

from panbench.metrics.info import MetricInfo

_M = "panbench.metrics"
_FRACTION = (0.0, 1.0)
_OPEN_ABOVE_ZERO = (0.0, None)


def _fraction(name: str, description: str, family: str, per_step: bool = True) -> MetricInfo:
    """A higher-is-better fraction in [0, 1] whose headline score is 100 x its mean."""
    return MetricInfo(
        name,
        description,
        True,
        "fraction",
        family,
        per_step,
        range=_FRACTION,
        headline_divisor=1.0,
    )


def _cost(name: str, description: str, unit: str) -> MetricInfo:
    """A lower-is-better compute or effort count per episode (no headline score)."""
    return MetricInfo(name, description, False, unit, "planning", False, range=_OPEN_ABOVE_ZERO)


_FRAME: tuple[MetricInfo, ...] = (
    MetricInfo(
        "psnr",
        "Peak signal-to-noise ratio of each predicted frame against the true one, capped at 100 dB.",
        True,
        "dB",
        "frame",
        True,
        f"{_M}.frame:PSNR",
        f"{_M}.frame:psnr_video",
        range=(0.0, 100.0),
        headline_divisor=50.0,  # 50 dB counts as a perfect frame
    ),
    MetricInfo(
        "ssim",
        "Structural similarity of each predicted frame (gaussian 11/1.5, valid region, RGB mean).",
        True,
        "",
        "frame",
        True,
        f"{_M}.frame:SSIM",
        f"{_M}.frame:ssim_video",
        range=(-1.0, 1.0),
        headline_divisor=1.0,
    ),
    MetricInfo(
        "lpips",
        "Learned perceptual distance of each predicted frame from the true one (pretrained net).",
        False,
        "",
        "frame",
        True,
        f"{_M}.lpips:LPIPS",
        f"{_M}.lpips:lpips_video",
        range=_OPEN_ABOVE_ZERO,
        needs_weights=True,
    ),
    MetricInfo(
        "fvd",
        "Frechet video distance of I3D features of predicted and true clips (FVD_n over windows).",
        False,
        "",
        "set",
        False,
        f"{_M}.fvd:FVD",
        f"{_M}.fvd:fvd",
        level="set",
        range=_OPEN_ABOVE_ZERO,
        needs_weights=True,
        set_function=f"{_M}.fvd:fvd_from_records",
    ),
    MetricInfo(
        "action_sensitivity",
        "Mean |pred_a - pred_b| / 255: one context under its actions and under another's; 0 if ignored.",
        True,
        "fraction",
        "frame",
        True,
        range=_FRACTION,
        headline_divisor=1.0,
    ),
    MetricInfo(
        "delta_psnr",
        "PSNR(truth_a, pred_a) - PSNR(truth_a, pred_b): how much the commanded action explains it.",
        True,
        "dB",
        "frame",
        False,
    ),
)

_GROUNDED: tuple[MetricInfo, ...] = (
    MetricInfo(
        "position_error",
        "Mean distance between perceived and true entity positions, over entities shown in both.",
        False,
        "px",
        "grounded",
        True,
        f"{_M}.grounded:PositionError",
        f"{_M}.grounded:position_error",
        range=_OPEN_ABOVE_ZERO,
    ),
    MetricInfo(
        "miss_rate",
        "Fraction of truly present entities that the predicted frame does not show.",
        False,
        "fraction",
        "grounded",
        True,
        f"{_M}.grounded:MissRate",
        f"{_M}.grounded:miss_rate",
        range=_FRACTION,
    ),
    MetricInfo(
        "invention_rate",
        "Fraction of the entities a predicted frame shows that are truly absent (invented).",
        False,
        "fraction",
        "grounded",
        True,
        function=f"{_M}.grounded:invention_rate",
        range=_FRACTION,
    ),
    MetricInfo(
        "presence_accuracy",
        "Object permanence: fraction of entity slots whose presence matches the truth.",
        True,
        "fraction",
        "grounded",
        True,
        f"{_M}.grounded:PresenceAccuracy",
        f"{_M}.grounded:presence_accuracy",
        range=_FRACTION,
        headline_divisor=1.0,
    ),
    MetricInfo(
        "action_following",
        "Fraction of steps with a true effect whose every entity change the prediction reproduces.",
        True,
        "fraction",
        "grounded",
        True,
        f"{_M}.grounded:ActionFollowing",
        f"{_M}.grounded:action_following",
        range=_FRACTION,
        headline_divisor=1.0,
    ),
    MetricInfo(
        "hold_accuracy",
        "Fraction of steps without a true effect on which the prediction also changes nothing.",
        True,
        "fraction",
        "grounded",
        True,
        f"{_M}.grounded:HoldAccuracy",
        f"{_M}.grounded:hold_accuracy",
        range=_FRACTION,
        headline_divisor=1.0,
    ),
    MetricInfo(
        "change_following",
        "Action following including discrete attributes (colours, background), on changed steps.",
        True,
        "fraction",
        "grounded",
        True,
        range=_FRACTION,
        headline_divisor=1.0,
    ),
    MetricInfo(
        "tracking_accuracy",
        "Fraction of entity slots shown where they truly are (within track_px) or truly absent.",
        True,
        "fraction",
        "grounded",
        True,
        function=f"{_M}.grounded:tracking_accuracy",
        range=_FRACTION,
        headline_divisor=1.0,
    ),
    MetricInfo(
        "counterfactual_accuracy",
        "Whether the predicted difference between two actions' outcomes matches the true one.",
        True,
        "fraction",
        "grounded",
        False,
        function=f"{_M}.grounded:counterfactual_agreement",
        range=_FRACTION,
        headline_divisor=1.0,
    ),
)

_CHOICE_AND_JUDGED: tuple[MetricInfo, ...] = (
    _fraction(
        "choice_accuracy",
        "Fraction of steps whose prediction is nearest the true candidate (ties share credit).",
        "choice",
    ),
    _fraction(
        "fidelity", "Judged round scores, mean, as a fraction of the rubric's top.", "judged"
    ),
    _fraction("agent_fidelity", "Fidelity over the agent prompt lists (WR-Arena 1-3).", "judged"),
    _fraction(
        "environment_fidelity",
        "Fidelity over the environment prompt lists (WR-Arena 4-6).",
        "judged",
    ),
    MetricInfo(
        "smoothness",
        "WR-Arena transition smoothness per round: median flow speed x exp(-median speed change).",
        True,
        "px/frame",
        "video",
        True,
        f"{_M}.smoothness:Smoothness",
        f"{_M}.smoothness:smoothness_rounds",
        range=_OPEN_ABOVE_ZERO,
    ),
)

_PLANNING: tuple[MetricInfo, ...] = (
    _fraction(
        "success",
        "Fraction of episodes whose goal holds in the true env within the step budget.",
        "planning",
    ),
    _fraction("random_success", "Success of the seeded random-acting reference.", "planning"),
    _fraction(
        "oracle_success", "Success of the same planner imagining with the true env.", "planning"
    ),
    MetricInfo(
        "normalized_score",
        "(success - random) / (oracle - random) over episodes, with a paired bootstrap CI.",
        True,
        "",
        "planning",
        False,
        level="set",
        headline_divisor=1.0,
        set_function=f"{_M}.planning:normalized_score",
    ),
    _cost("steps_to_goal", "Steps taken by the episodes that reach their goal.", "steps"),
    _cost("wm_calls", "World-model calls (reset + step) per closed-loop run.", "calls"),
    _cost("frames_imagined", "Frames the model imagined per closed-loop run.", "frames"),
    MetricInfo(
        "tie_rate",
        "Fraction of plans whose best candidate was tied (chosen at random).",
        False,
        "fraction",
        "planning",
        False,
        range=_FRACTION,
    ),
    _fraction(
        "goal_progress",
        "Fraction of the start's pixel distance to the goal image removed in imagination.",
        "planning",
        per_step=False,
    ),
    MetricInfo(
        "goal_distance",
        "Final imagined frame's pixel MSE to the goal image (pixels scaled to [0, 1]).",
        False,
        "",
        "planning",
        False,
        function=f"{_M}.planning:goal_distance",
        range=_FRACTION,
    ),
    MetricInfo(
        "policy_rank_correlation",
        "Spearman correlation of K policies' imagined and true success rates (0 without spread).",
        True,
        "",
        "planning",
        False,
        function=f"{_M}.policy_eval:spearman",
        level="set",
        range=(-1.0, 1.0),
        headline_divisor=1.0,
        set_function=f"{_M}.policy_eval:policy_rank_correlation",
    ),
    MetricInfo(
        "policy_success_error",
        "Mean over policies of |imagined - true success| in an episode.",
        False,
        "fraction",
        "planning",
        False,
        range=_FRACTION,
    ),
)

_P = f"{_M}.physics"
_PHYSICS: tuple[MetricInfo, ...] = (
    MetricInfo(
        "outcome_accuracy",
        "Whether every object's outcome (still, moved, gone) at the end matches the truth.",
        True,
        "fraction",
        "physics",
        False,
        function=f"{_P}:outcome_match",
        range=_FRACTION,
        headline_divisor=1.0,
    ),
    MetricInfo(
        "mover_tracking",
        "Tracking accuracy over the objects the truth moves or hides (objects at rest left out).",
        True,
        "fraction",
        "physics",
        True,
        function=f"{_P}:mover_tracking",
        range=_FRACTION,
        headline_divisor=1.0,
    ),
    MetricInfo(
        "final_position_error",
        "Mean image-position error of the objects present in both at the last step, px.",
        False,
        "px",
        "physics",
        False,
        range=_OPEN_ABOVE_ZERO,
    ),
    MetricInfo(
        "spatial_iou",
        "Physics-IQ spatial IoU: motion masks collapsed over time (where things move).",
        True,
        "fraction",
        "physics",
        False,
        function=f"{_P}:spatial_iou",
        range=_FRACTION,
        headline_divisor=1.0,
    ),
    MetricInfo(
        "spatiotemporal_iou",
        "Physics-IQ spatiotemporal IoU: per-frame IoU of motion masks (where and when).",
        True,
        "fraction",
        "physics",
        True,
        function=f"{_P}:spatiotemporal_iou",
        range=_FRACTION,
        headline_divisor=1.0,
    ),
    MetricInfo(
        "weighted_spatial_iou",
        "Physics-IQ weighted spatial IoU: motion frequency per pixel (where and how much).",
        True,
        "fraction",
        "physics",
        False,
        function=f"{_P}:weighted_spatial_iou",
        range=_FRACTION,
        headline_divisor=1.0,
    ),
    MetricInfo(
        "mse",
        "Physics-IQ MSE: mean squared pixel error of each frame, pixels scaled to [0, 1].",
        False,
        "",
        "physics",
        True,
        function=f"{_P}:frame_mse",
        range=_FRACTION,
    ),
)

_O = f"{_M}.outcome"
_OUTCOME: tuple[MetricInfo, ...] = (
    MetricInfo(
        "reward_sign_accuracy",
        "Steps whose predicted reward has the emulator's reward sign (models that predict rewards).",
        True,
        "fraction",
        "outcome",
        True,
        function=f"{_O}:reward_sign_agreement",
        range=_FRACTION,
        headline_divisor=1.0,
    ),
    MetricInfo(
        "terminal_f1",
        "F1 of the predicted episode-end flags over an episode's steps (1 when neither ends).",
        True,
        "fraction",
        "outcome",
        False,
        function=f"{_O}:terminal_f1",
        range=_FRACTION,
        headline_divisor=1.0,
    ),
)

METRICS: tuple[MetricInfo, ...] = (
    *_FRAME,
    *_OUTCOME,
    *_GROUNDED,
    *_PHYSICS,
    *_CHOICE_AND_JUDGED,
    *_PLANNING,
)
