"""Tests for the judge contract: rubrics, frame sampling, reply parsing, the registry."""

from __future__ import annotations

import pickle
from typing import Any, ClassVar

import numpy as np
import pytest

from panbench.errors import ConfigError, ContractError, DataError, UnknownNameError
from panbench.judges import (
    JUDGES,
    WR_FIDELITY_RUBRIC,
    Judge,
    JudgementPending,
    Option,
    Rubric,
    Score,
    describe_judges,
    make_judge,
    parse_score,
    sample_frame_indices,
)

R03 = Rubric(name="r", version="1", text="Rate {prompt}.", scale=(0, 3))


# ---------------------------------------------------------------------------- Rubric
def test_rubric_round_trip_and_hash() -> None:
    d = WR_FIDELITY_RUBRIC.to_dict()
    assert d["scale"] == [0, 3] and d["frames"] == 8
    again = Rubric.from_dict(d)
    assert again == WR_FIDELITY_RUBRIC
    assert again.hash() == WR_FIDELITY_RUBRIC.hash()
    assert len(again.hash()) == 64
    for change in ({"version": "2"}, {"text": d["text"] + " "}, {"scale": [0, 4]}, {"frames": 4}):
        assert Rubric.from_dict({**d, **change}).hash() != again.hash()


def test_rubric_from_yaml_style_values() -> None:
    r = Rubric.from_dict({"name": "n", "version": 3, "text": "t", "scale": [1, 5]})
    assert (r.version, r.scale, r.frames) == ("3", (1, 5), 8)


@pytest.mark.parametrize(
    ("d", "match"),
    [
        ({"name": "n", "version": "1", "text": "t", "scale": [0, 3], "colour": 1}, "colour"),
        ({"name": "n", "version": "1", "text": "t"}, "missing.*scale"),
        ({"name": "n", "version": "1", "text": "t", "scale": [3, 0]}, "low < high"),
        ({"name": "n", "version": "1", "text": "t", "scale": [0, 2.5]}, "two integers"),
        ({"name": "n", "version": "1", "text": "t", "scale": 3}, r"\[low, high\]"),
        ({"name": "n", "version": "1", "text": "", "scale": [0, 3]}, "'text'.*non-empty"),
        ({"name": "n", "version": "1", "text": "t", "scale": [0, 3], "frames": 0}, "frames"),
        (["name"], "mapping"),
    ],
)
def test_rubric_from_dict_rejects(d: Any, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Rubric.from_dict(d)


def test_rubric_render() -> None:
    assert R03.render("go left") == "Rate go left."
    plain = Rubric(name="r", version="1", text="Rate it 0-3.", scale=(0, 3))
    assert plain.render("go left") == "Instruction: go left\nRate it 0-3."
    assert '"go left."' in WR_FIDELITY_RUBRIC.render("go left.")


# ---------------------------------------------------------------------------- sampling
def test_sample_frame_indices_by_hand() -> None:
    # 49 frames, 8 samples: k * 48 / 7 = 0, 6.86, 13.71, 20.57, 27.43, 34.29, 41.14, 48.
    assert sample_frame_indices(49, 8).tolist() == [0, 6, 13, 20, 27, 34, 41, 48]
    # 121 frames: k * 120 / 7 = 0, 17.14, 34.29, 51.43, 68.57, 85.71, 102.86, 120.
    assert sample_frame_indices(121, 8).tolist() == [0, 17, 34, 51, 68, 85, 102, 120]
    # Shorter clips repeat frames, as upstream's linspace does.
    assert sample_frame_indices(3, 8).tolist() == [0, 0, 0, 0, 1, 1, 1, 2]
    assert sample_frame_indices(1, 8).tolist() == [0] * 8
    assert sample_frame_indices(10, 1).tolist() == [0]


def test_sample_frame_indices_exact_for_eight() -> None:
    # For WR-Arena's 8 frames the float linspace equals the exact floor(k (T-1) / 7).
    for t in range(1, 600):
        expected = [(k * (t - 1)) // 7 for k in range(8)]
        assert sample_frame_indices(t, 8).tolist() == expected, t


def test_sample_frame_indices_keeps_upstream_float_truncation() -> None:
    # 7 * 122 / 14 = 61 exactly, but upstream's float linspace truncates 60.99999 to 60.
    assert sample_frame_indices(123, 15)[7] == 60
    assert (sample_frame_indices(123, 15) == np.linspace(0, 122, 15, dtype=int)).all()


@pytest.mark.parametrize(("t", "n"), [(0, 8), (8, 0), (-1, 8), (8, True)])
def test_sample_frame_indices_rejects(t: int, n: int) -> None:
    with pytest.raises(ConfigError, match="positive integer"):
        sample_frame_indices(t, n)


# ---------------------------------------------------------------------------- parse_score
@pytest.mark.parametrize(
    ("reply", "value"),
    [
        ("2", 2),
        (" 3.\n", 3),
        ("0", 0),
        ("**2**", 2),
        ("Score: 1", 1),
        ("**Score:** 3", 3),
        ("Final score = 0", 0),
        ("Score: 2/3", 2),
        ("I would rate this 2 because frame 1 shows the arm.", 2),
        ("The clip scores 1 out of 3.", 1),
        ("Frames 5-8 look right; overall 2/3", 2),
        ("2 - the arm moves toward the cup", 2),
        ("3\n\nThe object reaches the goal in frame 8.", 3),
        ("<think>Maybe 1, maybe 3.</think>\n2", 2),
        ("The answer is 3.", 3),
        ("Rating: 3\nFrames 1 and 2 show the start.", 3),
    ],
)
def test_parse_score(reply: str, value: int) -> None:
    got = parse_score(reply, R03)
    assert got == value and isinstance(got, float)


@pytest.mark.parametrize(
    ("reply", "match"),
    [
        ("", "found none"),
        ("The clip is good.", "found none"),
        ("1 or 3", "several candidates"),
        ("0-3 scale: 2", "several candidates"),
        ("5", r"\[0, 3\].*replied 5"),
        ("Score: 7", "replied 7"),
        ("2.5", "replied 2.5"),
        ("-1", "replied -1"),
    ],
)
def test_parse_score_rejects(reply: str, match: str) -> None:
    with pytest.raises(DataError, match=match):
        parse_score(reply, R03)


def test_parse_score_other_scales() -> None:
    r = Rubric(name="r", version="1", text="t", scale=(1, 10))
    assert parse_score("7/10", r) == 7
    assert parse_score("score: 10", r) == 10
    with pytest.raises(DataError):
        parse_score("0", r)
    signed = Rubric(name="r", version="1", text="t", scale=(-2, 2))
    assert parse_score("-2", signed) == -2


# ---------------------------------------------------------------------------- Judge + registry
class _Constant(Judge):
    """Always says 1 (test judge)."""

    kind: ClassVar[str] = "constant"
    options: ClassVar[tuple[Option, ...]] = (
        Option("value", int, "the score", default=1),
        Option("label", str, "a label", required=True),
        Option("strict", bool, "a flag", default=False),
        Option("weight", float, "a float", default=0.5),
    )

    def __init__(
        self, label: str, value: int = 1, strict: bool = False, weight: float = 0.5
    ) -> None:
        self.label, self.value, self.strict, self.weight = label, value, strict, weight
        self.seen: list[np.ndarray] = []

    def _score(self, frames: np.ndarray, prompt: str, rubric: Rubric) -> Score:
        self.seen.append(frames)
        return Score(float(self.value), str(self.value))

    def provenance(self) -> dict[str, Any]:
        return {"kind": self.kind, "model": "constant", "endpoint": None}


@pytest.fixture
def constant_registered() -> Any:
    JUDGES.register("constant", _Constant)
    yield
    JUDGES.unregister("constant")


def test_make_judge_coerces_cli_strings(constant_registered: None) -> None:
    judge = make_judge("constant", label=7, value="3", strict="true", weight="2")
    assert isinstance(judge, _Constant)
    assert (judge.label, judge.value, judge.strict, judge.weight) == ("7", 3, True, 2.0)
    with pytest.raises(ConfigError, match=r"Unknown option 'vlaue'.*Did you mean: value"):
        make_judge("constant", label="x", vlaue=2)
    with pytest.raises(ConfigError, match="requires the option 'label'"):
        make_judge("constant")
    with pytest.raises(ConfigError, match="'strict' of judge 'constant' to be bool"):
        make_judge("constant", label="x", strict="perhaps")
    kinds = [row[0] for row in describe_judges()]
    assert {"constant", "human", "openai-compatible"} <= set(kinds)


def test_judge_samples_and_checks_frames(constant_registered: None) -> None:
    judge = make_judge("constant", label="x")
    frames = np.arange(30, dtype=np.uint8)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)
    rubric = Rubric(name="r", version="1", text="t", scale=(0, 3), frames=4)
    assert judge.judge(frames, "p", rubric) == Score(1.0, "1")
    assert isinstance(judge, _Constant)
    np.testing.assert_array_equal(judge.seen[0][:, 0, 0, 0], [0, 9, 19, 29])
    for bad in (frames.astype(np.float32), frames[0], frames[..., :2], frames[:0]):
        with pytest.raises(ContractError, match=r"uint8|frame"):
            judge.judge(bad, "p", rubric)
    with pytest.raises(ContractError, match="Rubric"):
        judge.judge(frames, "p", {"name": "r"})  # type: ignore[arg-type]


def test_judgement_pending_survives_pickling() -> None:
    err = pickle.loads(pickle.dumps(JudgementPending("ab" * 32, "wait")))
    assert isinstance(err, JudgementPending)
    assert (err.item_id, str(err)) == ("ab" * 32, "wait")


def test_unknown_judge_kind() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean: human"):
        make_judge("humna")
