"""The judge contract: rubrics, scores, frame sampling, reply parsing and typed judge options."""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, TypeVar

import numpy as np

from panbench.errors import ConfigError, ContractError, DataError, PanbenchError

__all__ = [
    "Judge",
    "JudgementPending",
    "Option",
    "Rubric",
    "Score",
    "encode_png",
    "frames_digest",
    "judges_home",
    "parse_score",
    "sample_frame_indices",
]

J = TypeVar("J", bound="Judge")

# The placeholder a rubric's text uses for the instruction being judged.
PROMPT_PLACEHOLDER = "{prompt}"


@dataclass(frozen=True)
class Rubric:
    """What a judge is asked, versioned inside the task YAML.

    Attributes:
        name: identifier, e.g. ``"wr-action-fidelity"``.
        version: bumped whenever the text, scale or frame count changes; part of every cache key.
        text: the instruction to the judge. ``{prompt}`` (if present) is replaced by the prompt
            being judged; otherwise the prompt is put on a line of its own before the text.
        scale: the inclusive integer range of valid scores, e.g. ``(0, 3)``.
        frames: how many frames are sampled uniformly from each judged clip.
    """

    name: str
    version: str
    text: str
    scale: tuple[int, int]
    frames: int = 8

    _FIELDS: ClassVar[tuple[str, ...]] = ("name", "version", "text", "scale", "frames")

    def __post_init__(self) -> None:
        for field in ("name", "version", "text"):
            value = getattr(self, field)
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(
                    f"Expected rubric field {field!r} to be a non-empty string, but got {value!r}."
                )
        scale = self.scale
        if (
            not isinstance(scale, (tuple, list))
            or len(scale) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in scale)
            or scale[0] >= scale[1]
        ):
            raise ConfigError(
                f"Expected rubric {self.name!r} scale to be two integers [low, high] with "
                f"low < high, but got {scale!r}."
            )
        object.__setattr__(self, "scale", (int(scale[0]), int(scale[1])))
        if isinstance(self.frames, bool) or not isinstance(self.frames, int) or self.frames < 1:
            raise ConfigError(
                f"Expected rubric {self.name!r} frames to be a positive integer, "
                f"but got {self.frames!r}."
            )

    def to_dict(self) -> dict[str, Any]:
        """The canonical dict (the form stored in task YAML and hashed)."""
        return {
            "name": self.name,
            "version": self.version,
            "text": self.text,
            "scale": [self.scale[0], self.scale[1]],
            "frames": self.frames,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Rubric:
        """Builds a rubric from its dict form, refusing unknown or missing fields.

        Raises:
            ConfigError: ``d`` is not a mapping, has unknown or missing fields, or a field is
                of the wrong type or range.
        """
        if not isinstance(d, Mapping):
            raise ConfigError(f"Expected a rubric mapping, but got {type(d).__name__}.")
        unknown = sorted(set(d) - set(cls._FIELDS))
        if unknown:
            raise ConfigError(
                f"Unknown rubric field(s) {', '.join(map(repr, unknown))}; "
                f"expected: {', '.join(cls._FIELDS)}."
            )
        missing = [k for k in ("name", "version", "text", "scale") if k not in d]
        if missing:
            raise ConfigError(f"Rubric is missing the field(s) {', '.join(missing)}.")
        version = d["version"]
        if isinstance(version, (int, float)) and not isinstance(version, bool):
            version = str(version)  # YAML reads `version: 1` as an int
        scale = d["scale"]
        if not isinstance(scale, (list, tuple)):
            raise ConfigError(f"Expected rubric scale to be [low, high], but got {scale!r}.")
        return cls(
            name=d["name"],
            version=version,
            text=d["text"],
            scale=tuple(scale),
            frames=d.get("frames", 8),
        )

    def hash(self) -> str:
        """The hex sha256 of the canonical dict (sorted-key compact JSON)."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def render(self, prompt: str) -> str:
        """The rubric text with the prompt filled in (see :attr:`text`)."""
        if PROMPT_PLACEHOLDER in self.text:
            return self.text.replace(PROMPT_PLACEHOLDER, prompt)
        return f"Instruction: {prompt}\n{self.text}"

    @property
    def tag(self) -> str:
        """``"name@version"``, how provenance and sheets name the rubric."""
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class Score:
    """One judgement.

    Attributes:
        value: the score on the rubric scale.
        raw: the judge's reply text (or the human's note).
        cached: True when the judgement was read back from the cache without a new request.
    """

    value: float
    raw: str
    cached: bool = False


class JudgementPending(PanbenchError):
    """A human judge registered the item; its score is not available yet.

    Attributes:
        item_id: the content hash identifying the item in the judging sheet and its export.
    """

    def __init__(self, item_id: str, message: str | None = None) -> None:
        self.item_id = item_id
        super().__init__(message or f"Item {item_id} is waiting for a human score.")

    def __reduce__(self) -> tuple[Any, ...]:
        # Keeps item_id across processes (the default would pass only the message back).
        return (type(self), (self.item_id, str(self)))


@dataclass(frozen=True)
class Option:
    """One option a judge accepts (from the CLI as a string, or typed from Python).

    Attributes:
        name: keyword of the judge's ``__init__``.
        type: ``str``, ``int``, ``float``, ``bool`` or ``Path``.
        help: one line for ``panbench judges ls``.
        default: used when the option is not given; ignored when ``required``.
        required: the option must be given.
    """

    name: str
    type: type
    help: str
    default: Any = None
    required: bool = False

    def coerce(self, value: Any, kind: str) -> Any:
        """Converts ``value`` to :attr:`type`, or raises ConfigError naming the judge and option."""

        def bad() -> ConfigError:
            return ConfigError(
                f"Expected option {self.name!r} of judge {kind!r} to be "
                f"{self.type.__name__}, but got {value!r}."
            )

        if value is None:
            return None
        if self.type is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
                return value.lower() in ("true", "1", "yes")
            raise bad()
        if isinstance(value, bool):
            raise bad()
        if self.type is int:
            if isinstance(value, int):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if isinstance(value, str):
                try:
                    return int(value.strip())
                except ValueError:
                    raise bad() from None
            raise bad()
        if self.type is float:
            if isinstance(value, (int, float)):
                out = float(value)
            elif isinstance(value, str):
                try:
                    out = float(value.strip())
                except ValueError:
                    raise bad() from None
            else:
                raise bad()
            if not math.isfinite(out):
                raise bad()
            return out
        if self.type is Path:
            if isinstance(value, (str, os.PathLike)):
                return Path(value).expanduser()
            raise bad()
        if isinstance(value, (str, int, float)):
            return str(value)  # YAML may read a model name such as `7` as a number
        raise bad()


class Judge(ABC):
    """Scores a clip against a rubric: ``judge(frames, prompt, rubric) -> Score``.

    Subclasses set :attr:`kind` and :attr:`options` and implement :meth:`_score`, which receives
    the frames already checked and sampled, and :meth:`provenance`. A judge is a context
    manager; leaving the block calls :meth:`close`.
    """

    kind: ClassVar[str]
    options: ClassVar[tuple[Option, ...]] = ()
    #: True for a judge that cannot be shared between processes (a person at one sheet): the
    #: harness refuses to run it under torchrun
    single_process: ClassVar[bool] = False

    def judge(self, frames: np.ndarray, prompt: str, rubric: Rubric) -> Score:
        """Scores one clip.

        Args:
            frames: uint8 [T, H, W, 3], the clip in time order; ``rubric.frames`` of them are
                sampled uniformly (:func:`sample_frame_indices`).
            prompt: the instruction the clip should carry out.
            rubric: what is asked and on which scale.

        Returns:
            The score on ``rubric.scale``.

        Raises:
            ContractError: ``frames`` is not uint8 [T, H, W, 3] with T >= 1.
            JudgementPending: (human judge) the item was registered and awaits a score.
            DataError: the reply holds no score in range.
        """
        if not isinstance(rubric, Rubric):
            raise ContractError(f"Expected a panbench.judges.Rubric, but got {type(rubric)!r}.")
        if not isinstance(prompt, str):
            raise ContractError(f"Expected the prompt to be a str, but got {type(prompt)!r}.")
        check_frames(frames)
        sampled = np.ascontiguousarray(frames[sample_frame_indices(len(frames), rubric.frames)])
        return self._score(sampled, prompt, rubric)

    @abstractmethod
    def _score(self, frames: np.ndarray, prompt: str, rubric: Rubric) -> Score:
        """Scores the sampled frames uint8 [rubric.frames, H, W, 3]."""

    @abstractmethod
    def provenance(self) -> dict[str, Any]:
        """What a result must record about this judge: ``{"kind", "model", "endpoint", ...}``.

        Never contains secrets.
        """

    def close(self) -> None:  # noqa: B027 - most judges hold nothing to flush
        """Finishes pending work (the human judge writes its sheet here)."""

    def __enter__(self: J) -> J:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def check_frames(frames: Any) -> None:
    """Raises ContractError unless ``frames`` is a uint8 array [T, H, W, 3] with T, H, W >= 1."""
    if not isinstance(frames, np.ndarray):
        raise ContractError(f"Expected frames as a numpy array, but got {type(frames).__name__}.")
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ContractError(
            f"Expected frames of dtype uint8 and shape [T, H, W, 3], but got dtype "
            f"{frames.dtype} and shape {tuple(frames.shape)}."
        )
    if min(frames.shape[:3]) < 1:
        raise ContractError(f"Expected at least one frame, but got shape {tuple(frames.shape)}.")


def sample_frame_indices(num_frames: int, n: int) -> np.ndarray:
    """``n`` frame indices spread uniformly over a clip of ``num_frames`` frames.

    Matches WR-Arena's action-fidelity judge: ``linspace(0, num_frames - 1, n)`` truncated to
    integers, so the first and last frames are always included. A clip shorter than ``n``
    frames repeats frames (as upstream does) rather than sending fewer.

    Args:
        num_frames: frames in the clip (>= 1).
        n: frames to sample (>= 1).

    Returns:
        int64 [n], non-decreasing indices in ``[0, num_frames - 1]``.

    Example:
        >>> sample_frame_indices(49, 8).tolist()
        [0, 6, 13, 20, 27, 34, 41, 48]
    """
    for name, value in (("num_frames", num_frames), ("n", n)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ConfigError(f"Expected {name} to be a positive integer, but got {value!r}.")
    return np.linspace(0, num_frames - 1, n).astype(np.int64)


# A number standing alone: not part of a word, a decimal or a range such as "0-3".
_NUMBER = r"(?<![\w.\-])-?\d+(?:\.\d+)?(?!\w|\.\d)"
_KEYWORD = re.compile(
    r"\b(?:score|scores|scored|rating|rate|rated|grade)\b[\s:=]*"
    r"(?:(?:is|of|be|would|should|this|it|the|clip|video|sequence|a|an|as|at|final)\b[\s:=]*)"
    rf"{{0,4}}({_NUMBER})",
    re.IGNORECASE,
)
_THINK = re.compile(r"<think>.*?(?:</think>|$)", re.IGNORECASE | re.DOTALL)
_DECOR = re.compile(r"[*_`#>\"'\[\]()]")


def parse_score(reply: str, rubric: Rubric) -> float:
    """Reads the score out of a judge's reply.

    Tries, in order: a reply that is only a number; the last "score/rating/grade: N"; the
    last "N/high" or "N out of high" with the rubric's maximum; a number opening the reply;
    the only distinct in-range number in the reply. Reasoning blocks (``<think>...</think>``)
    and markdown decoration are ignored.

    Args:
        reply: the judge's reply text.
        rubric: gives the valid scale.

    Returns:
        The score, an integer value within ``rubric.scale``, as a float.

    Raises:
        DataError: no unambiguous score is found, or it is not an integer within the scale.
    """
    if not isinstance(reply, str):
        raise DataError(f"Expected the judge's reply to be text, but got {type(reply).__name__}.")
    lo, hi = rubric.scale
    text = _DECOR.sub(" ", _THINK.sub(" ", reply)).strip()
    excerpt = reply if len(reply) <= 200 else reply[:200] + "..."

    def check(token: str) -> float:
        value = float(token)
        if not value.is_integer() or not lo <= value <= hi:
            raise DataError(
                f"Expected an integer score in [{lo}, {hi}] (rubric {rubric.tag}), but the "
                f"judge replied {token}: {excerpt!r}"
            )
        return value

    if re.fullmatch(rf"{_NUMBER}\s*[.!]?", text):
        return check(text.rstrip(".! \t\n"))
    keyword = _KEYWORD.findall(text)
    if keyword:
        return check(keyword[-1])
    fraction = re.findall(rf"({_NUMBER})\s*(?:/|out of)\s*{hi}(?!\d)", text, re.IGNORECASE)
    if fraction:
        return check(fraction[-1])
    # "2", "2.", "2: ...", "2 - ..." or "2" then a new line; not "1 or 3" nor "0-3".
    leading = re.match(rf"\s*({_NUMBER})(?:[ \t]*(?:\n|$)|[.:;!)]|[ \t]+[-–—:])", text)
    if leading:
        return check(leading.group(1))
    numbers = re.findall(_NUMBER, text)
    in_range = {float(t) for t in numbers if lo <= float(t) <= hi and float(t).is_integer()}
    if len(in_range) == 1:
        return in_range.pop()
    found = "none" if not numbers else f"several candidates {sorted(set(numbers))}"
    raise DataError(
        f"Expected the judge's reply to contain one integer score in [{lo}, {hi}] "
        f"(rubric {rubric.tag}), but found {found} in {excerpt!r}."
    )


def frames_digest(frames: np.ndarray) -> str:
    """The hex sha256 of a frame array's shape, dtype and bytes (encoder independent)."""
    h = hashlib.sha256(f"{frames.dtype.str}{tuple(frames.shape)}".encode())
    h.update(np.ascontiguousarray(frames).tobytes())
    return h.hexdigest()


def encode_png(frame: np.ndarray) -> bytes:
    """PNG bytes of one uint8 [H, W, 3] frame."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame)).save(buffer, format="PNG")
    return buffer.getvalue()


def judges_home() -> Path:
    """The judges' folder: ``$PANBENCH_HOME/judges``, default ``~/.cache/panbench/judges``."""
    home = os.environ.get("PANBENCH_HOME")
    base = Path(home).expanduser() if home else Path("~/.cache/panbench").expanduser()
    return base / "judges"
