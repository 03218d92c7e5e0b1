"""Judges: score a clip against a versioned rubric, by a vision-language model or a person.

``make_judge("openai-compatible", base_url=..., model=...)`` or ``make_judge("human",
sheet=...)`` builds one; ``judge.judge(frames, prompt, rubric) -> Score``. Third-party judges
register through the entry-point group ``panbench.judges`` (a :class:`Judge` subclass that sets
``kind`` and ``options``). See docs/judges.md.
"""

from __future__ import annotations

from typing import Any

from panbench.errors import ConfigError, ContractError
from panbench.judges.base import (
    Judge,
    JudgementPending,
    Option,
    Rubric,
    Score,
    parse_score,
    sample_frame_indices,
)
from panbench.judges.human import HumanJudge, read_scores
from panbench.judges.openai_compatible import JudgeRequestError, OpenAICompatibleJudge
from panbench.judges.wr_arena import WR_FIDELITY_RUBRIC, fidelity_percent, wr_instruction
from panbench.registry import Registry, did_you_mean

JUDGES: Registry[type[Judge]] = Registry("judge", entry_point_group="panbench.judges")
JUDGES.register("openai-compatible", "panbench.judges.openai_compatible:OpenAICompatibleJudge")
JUDGES.register("human", "panbench.judges.human:HumanJudge")


def judge_class(kind: str) -> type[Judge]:
    """The registered judge class ``kind`` (unknown kinds suggest close ones)."""
    cls = JUDGES.get(kind)
    if not (isinstance(cls, type) and issubclass(cls, Judge)):
        raise ContractError(
            f"Expected judge {kind!r} to be a panbench.judges.Judge subclass, but it is {cls!r}."
        )
    return cls


def make_judge(kind: str, **options: Any) -> Judge:
    """Builds the judge ``kind`` from options.

    Args:
        kind: a registered judge kind (``"openai-compatible"``, ``"human"``, plugins).
        **options: the judge's options, as strings (from ``--judge-args k=v``) or typed values;
            each is converted to the option's declared type.

    Raises:
        UnknownNameError: ``kind`` is not registered.
        ConfigError: an option is unknown (the message names the known ones), missing or of
            the wrong type.
    """
    cls = judge_class(kind)
    declared = {opt.name: opt for opt in cls.options}
    for key in options:
        if key not in declared:
            known = list(declared)
            raise ConfigError(
                f"Unknown option {key!r} for judge {kind!r}.{did_you_mean(key, known)} "
                f"Known options: {', '.join(known) or '(none)'}."
            )
    kwargs: dict[str, Any] = {}
    for name, opt in declared.items():
        if name in options and options[name] is not None and options[name] != "":
            kwargs[name] = opt.coerce(options[name], kind)
        elif opt.required:
            raise ConfigError(
                f"Judge {kind!r} requires the option {name!r} ({opt.help}); pass it as {name}=..."
            )
    return cls(**kwargs)


def describe_judges() -> list[tuple[str, str, list[Option]]]:
    """(kind, first docstring line, options) for every registered judge, for ``judges ls``."""
    rows: list[tuple[str, str, list[Option]]] = []
    for kind in JUDGES.names():
        try:
            cls = judge_class(kind)
        except ImportError as err:  # a plugin whose dependencies are missing
            rows.append((kind, f"(cannot import: {err})", []))
            continue
        doc = (cls.__doc__ or "").strip().splitlines()
        rows.append((kind, doc[0] if doc else "", list(cls.options)))
    return rows


__all__ = [
    "JUDGES",
    "WR_FIDELITY_RUBRIC",
    "HumanJudge",
    "Judge",
    "JudgeRequestError",
    "JudgementPending",
    "OpenAICompatibleJudge",
    "Option",
    "Rubric",
    "Score",
    "describe_judges",
    "fidelity_percent",
    "judge_class",
    "make_judge",
    "parse_score",
    "read_scores",
    "sample_frame_indices",
    "wr_instruction",
]
