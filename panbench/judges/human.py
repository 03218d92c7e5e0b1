"""The human judge: a self-contained HTML judging sheet out, the exported scores back in.

The flow: a run with ``--judge human`` registers every clip it needs judged (``judge()`` raises
:class:`~panbench.judges.JudgementPending`) and :meth:`HumanJudge.close` writes
``<sheet>/judging-sheet.html``. A person opens it in any browser (it needs no network), clicks
one score per item and presses Export, which downloads ``panbench-scores.json``. Rerunning with
``scores=<that file>`` makes ``judge()`` return those scores. A later sheet carries the scores
already given, so each export holds every score so far.

Export format (``read_scores`` validates it)::

    {"format": "panbench-human-scores", "version": 1,
     "scores": {"<item id>": {"score": 2, "scale": [0, 3], "rubric": "name@version",
                              "note": "optional text"}}}
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from panbench.errors import ConfigError, DataError
from panbench.io import atomic_write_text, sha256_file
from panbench.judges.base import (
    Judge,
    JudgementPending,
    Option,
    Rubric,
    Score,
    encode_png,
    frames_digest,
)

__all__ = [
    "EXPORT_FORMAT",
    "SHEET_FORMAT",
    "SHEET_NAME",
    "HumanJudge",
    "HumanScore",
    "item_id",
    "read_manifest",
    "read_scores",
]

SHEET_NAME = "judging-sheet.html"
SHEET_FORMAT = "panbench-human-sheet"
EXPORT_FORMAT = "panbench-human-scores"
FORMAT_VERSION = 1
_ITEM_ID = re.compile(r"[0-9a-f]{64}")
_MANIFEST = re.compile(
    r'<script type="application/json" id="panbench-items">(.*?)</script>', re.DOTALL
)


@dataclass(frozen=True)
class HumanScore:
    """One exported human judgement.

    Attributes:
        score: an integer on ``scale``.
        scale: the rubric's inclusive (low, high) range.
        rubric: ``"name@version"`` of the rubric the score answers.
        note: the judge's free-text note (may be empty).
    """

    score: int
    scale: tuple[int, int]
    rubric: str
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "scale": list(self.scale),
            "rubric": self.rubric,
            "note": self.note,
        }


def item_id(frames: np.ndarray, prompt: str, rubric: Rubric) -> str:
    """The item's identity: sha256 over the sampled frames' pixels, the prompt and the rubric.

    Args:
        frames: the sampled frames uint8 [N, H, W, 3] shown to the judge.
        prompt: the instruction.
        rubric: the rubric (its hash enters, so a new version is a new item).
    """
    blob = json.dumps(
        {
            "frames": [frames_digest(f) for f in frames],
            "prompt": prompt,
            "rubric": rubric.hash(),
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------- reading back
def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The machine-readable manifest embedded in a judging sheet.

    Returns:
        ``{"format", "version", "items": [{"id", "prompt", "rubric": {...}, "frames"}],
        "carried": {id: exported score entry}}``.

    Raises:
        DataError: the file is missing or holds no valid panbench manifest.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise DataError(f"Cannot read the judging sheet {path}: {err}.") from err
    match = _MANIFEST.search(text)
    if not match:
        raise DataError(
            f"Expected {path} to be a panbench judging sheet with a "
            '<script type="application/json" id="panbench-items"> block, but found none.'
        )
    try:
        manifest = json.loads(match.group(1))
    except ValueError as err:
        raise DataError(f"The manifest embedded in {path} is not valid JSON: {err}.") from err
    if not isinstance(manifest, dict) or manifest.get("format") != SHEET_FORMAT:
        raise DataError(f"Expected a {SHEET_FORMAT!r} manifest in {path}.")
    return manifest


def manifest_scales(manifest: Mapping[str, Any]) -> dict[str, tuple[int, int]]:
    """Item id -> rubric scale for every item a sheet lists or carries."""
    scales: dict[str, tuple[int, int]] = {}
    try:
        for item in manifest.get("items", []):
            lo, hi = item["rubric"]["scale"]
            scales[item["id"]] = (lo, hi)
        for key, entry in manifest.get("carried", {}).items():
            lo, hi = entry["scale"]
            scales.setdefault(key, (lo, hi))
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise DataError(f"The judging sheet's manifest is malformed ({err!r}).") from err
    return scales


def read_scores(
    path: str | os.PathLike[str], known: Mapping[str, tuple[int, int]] | None = None
) -> dict[str, HumanScore]:
    """Reads and validates a scores file exported from a judging sheet.

    Args:
        path: the exported JSON (format in the module docstring).
        known: item id -> scale of the sheet the scores came from; when given, an id it lacks
            or a scale that differs is refused.

    Returns:
        Item id -> its score.

    Raises:
        DataError: the file is missing, not JSON, not in the export format, or an item is
            unknown or its score is not an integer within its scale; the message names the
            item and what was expected.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise DataError(f"Cannot read the human scores file {path}: {err}.") from err
    try:
        data = json.loads(text)
    except ValueError as err:
        raise DataError(
            f"The human scores file {path} is not valid JSON ({err}); export it again from "
            f"the judging sheet."
        ) from err
    if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise DataError(
            f"Expected {path} to be an export with format {EXPORT_FORMAT!r}, but got {got!r}."
        )
    if data.get("version") != FORMAT_VERSION:
        raise DataError(
            f"Expected export format version {FORMAT_VERSION} in {path}, "
            f"but got {data.get('version')!r}."
        )
    entries = data.get("scores")
    if not isinstance(entries, dict):
        raise DataError(f"Expected 'scores' in {path} to be an object of item id -> score.")
    out: dict[str, HumanScore] = {}
    for key, entry in entries.items():
        where = f"item {key} in {path}"
        if not _ITEM_ID.fullmatch(key):
            raise DataError(f"Expected item ids of 64 hex digits, but {where} is not one.")
        if known is not None and key not in known:
            raise DataError(
                f"Unknown {where}: the judging sheet lists {len(known)} item(s) and not this "
                f"one. Was it exported from another sheet?"
            )
        if not isinstance(entry, dict):
            raise DataError(f"Expected {where} to be an object with 'score' and 'scale'.")
        scale = entry.get("scale")
        if (
            not isinstance(scale, list)
            or len(scale) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in scale)
            or scale[0] >= scale[1]
        ):
            raise DataError(f"Expected {where} to have scale [low, high], but got {scale!r}.")
        lo, hi = scale
        if known is not None and tuple(known[key]) != (lo, hi):
            raise DataError(
                f"Expected {where} to have the sheet's scale {list(known[key])}, but got {scale}."
            )
        score = entry.get("score")
        if isinstance(score, bool) or not isinstance(score, int) or not lo <= score <= hi:
            raise DataError(
                f"Expected {where} to have an integer score in [{lo}, {hi}], but got {score!r}."
            )
        rubric = entry.get("rubric", "")
        note = entry.get("note", "")
        if not isinstance(rubric, str) or not isinstance(note, str):
            raise DataError(f"Expected {where} to have text 'rubric' and 'note' fields.")
        out[key] = HumanScore(score=score, scale=(lo, hi), rubric=rubric, note=note)
    return out


# ---------------------------------------------------------------------------- the judge
@dataclass
class _Item:
    id: str
    prompt: str
    rubric: Rubric
    frames: list[int]  # indices into the sheet's table of distinct frames (PNG data URLs)


class HumanJudge(Judge):
    """Scores come from a person, through an HTML judging sheet and its exported JSON.

    Args:
        sheet: the folder the sheet is written to (``<sheet>/judging-sheet.html``).
        scores: a scores file exported from an earlier sheet (optional).
        max_side: frames shown in the sheet are downscaled so their longer side is at most
            this many pixels (0 keeps them as they are); the item id uses the full frames.
    """

    kind: ClassVar[str] = "human"
    single_process: ClassVar[bool] = True
    options: ClassVar[tuple[Option, ...]] = (
        Option("sheet", Path, "folder the judging sheet is written to", required=True),
        Option("scores", Path, "scores JSON exported from the sheet", default=None),
        Option("max_side", int, "longest frame side in the sheet (0: as is)", default=512),
    )

    def __init__(
        self,
        sheet: str | os.PathLike[str],
        scores: str | os.PathLike[str] | None = None,
        max_side: int = 512,
    ) -> None:
        if max_side < 0:
            raise ConfigError(f"Expected max_side >= 0, but got {max_side}.")
        self.sheet_dir = Path(sheet).expanduser()
        if self.sheet_dir.exists() and not self.sheet_dir.is_dir():
            raise ConfigError(f"Expected sheet to be a folder, but {self.sheet_dir} is a file.")
        self.max_side = max_side
        self.scores_path = Path(scores).expanduser() if scores else None
        self._scores: dict[str, HumanScore] = {}
        self._scores_sha256: str | None = None
        if self.scores_path is not None:
            known = None
            if self.sheet_path.exists():
                known = manifest_scales(read_manifest(self.sheet_path))
            self._scores = read_scores(self.scores_path, known)
            self._scores_sha256 = sha256_file(self.scores_path)
        self._pending: dict[str, _Item] = {}
        # Each distinct frame is embedded once: copy-like models and clips padded to
        # ``rubric.frames`` repeat frames, and a PNG per repeat made sheets hundreds of MB.
        self._frame_ids: dict[bytes, int] = {}
        self._frame_urls: list[str] = []

    @property
    def sheet_path(self) -> Path:
        return self.sheet_dir / SHEET_NAME

    @property
    def pending(self) -> list[str]:
        """Ids of the items registered and still waiting for a score, in registration order."""
        return list(self._pending)

    def provenance(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "model": "human",
            "endpoint": None,
            "scores_sha256": self._scores_sha256,
        }

    def _score(self, frames: np.ndarray, prompt: str, rubric: Rubric) -> Score:
        key = item_id(frames, prompt, rubric)
        given = self._scores.get(key)
        if given is not None:
            if given.scale != rubric.scale:
                raise DataError(
                    f"Item {key} was scored on scale {list(given.scale)}, but rubric "
                    f"{rubric.tag} uses {list(rubric.scale)}."
                )
            return Score(float(given.score), given.note)
        if key not in self._pending:
            self._pending[key] = _Item(key, prompt, rubric, [self._frame_index(f) for f in frames])
        raise JudgementPending(
            key,
            f"Item {key} awaits a human score: after the run, open {self.sheet_path}, score "
            f"it, press Export and rerun with scores=<the exported file>.",
        )

    def _frame_index(self, frame: np.ndarray) -> int:
        digest = hashlib.sha256(
            repr(frame.shape).encode() + np.ascontiguousarray(frame).tobytes()
        ).digest()
        index = self._frame_ids.get(digest)
        if index is None:
            index = self._frame_ids[digest] = len(self._frame_urls)
            self._frame_urls.append(self._data_url(frame))
        return index

    def _data_url(self, frame: np.ndarray) -> str:
        h, w = frame.shape[:2]
        if self.max_side and max(h, w) > self.max_side:
            from PIL import Image

            ratio = self.max_side / max(h, w)
            size = (max(1, round(w * ratio)), max(1, round(h * ratio)))
            frame = np.asarray(Image.fromarray(frame).resize(size, Image.Resampling.LANCZOS))
        return "data:image/png;base64," + base64.b64encode(encode_png(frame)).decode("ascii")

    def close(self) -> None:
        """Writes the judging sheet when items are pending (atomically); otherwise nothing."""
        if not self._pending:
            return
        self.sheet_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(
            self.sheet_path,
            render_sheet(list(self._pending.values()), self._scores, self._frame_urls),
        )


# ---------------------------------------------------------------------------- the sheet
def _manifest(items: list[_Item], carried: Mapping[str, HumanScore]) -> dict[str, Any]:
    return {
        "format": SHEET_FORMAT,
        "version": FORMAT_VERSION,
        "export": {"format": EXPORT_FORMAT, "version": FORMAT_VERSION},
        "items": [
            {
                "id": item.id,
                "prompt": item.prompt,
                "rubric": {
                    "name": item.rubric.name,
                    "version": item.rubric.version,
                    "tag": item.rubric.tag,
                    "sha256": item.rubric.hash(),
                    "scale": list(item.rubric.scale),
                },
                "frames": len(item.frames),
            }
            for item in items
        ],
        "carried": {key: carried[key].to_dict() for key in sorted(carried)},
    }


def _script_json(obj: Any) -> str:
    # A "<" in a prompt could close the <script> element early ("</script>") or change how
    # the browser parses it ("<!--"); JSON reads the escape back as "<".
    return json.dumps(obj, ensure_ascii=False, sort_keys=True).replace("<", "\\u003c")


def render_sheet(
    items: list[_Item], carried: Mapping[str, HumanScore], frame_urls: Sequence[str]
) -> str:
    """The judging sheet's HTML: items with frames, prompt, rubric and score buttons.

    Args:
        items: the pending items; ``item.frames`` index ``frame_urls``.
        carried: scores from earlier exports, carried into this sheet's export.
        frame_urls: the distinct frames as PNG data URLs, each embedded once in a JSON table
            that the page's script puts into the ``<img>`` elements on load.
    """
    sections = []
    for n, item in enumerate(items, 1):
        lo, hi = item.rubric.scale
        buttons = "".join(
            f'<button type="button" class="score" data-value="{v}">{v}</button>'
            for v in range(lo, hi + 1)
        )
        images = "".join(
            f'<img data-frame="{index}" alt="frame {i + 1} of {len(item.frames)}">'
            for i, index in enumerate(item.frames)
        )
        sections.append(
            f'<section class="item" id="item-{item.id}" data-id="{item.id}">'
            f"<h2>Item {n} of {len(items)} <small>{html.escape(item.rubric.tag)} · "
            f"{item.id[:12]}</small></h2>"
            f'<p class="prompt"><b>Instruction:</b> {html.escape(item.prompt)}</p>'
            f'<div class="frames">{images}</div>'
            f'<details open><summary>Rubric</summary><pre class="rubric">'
            f"{html.escape(item.rubric.render(item.prompt))}</pre></details>"
            f'<div class="buttons">Score: {buttons}</div>'
            f'<input class="note" type="text" placeholder="note (optional)">'
            f"</section>"
        )
    values = {
        "MANIFEST": _script_json(_manifest(items, carried)),
        "FRAMES": _script_json(list(frame_urls)),
        "COUNT": str(len(items)),
        "CARRIED": str(len(carried)),
        "ITEMS": "\n".join(sections),
    }
    # One pass over the template, so text inside the values is never taken for a marker.
    return re.sub(r"%%([A-Z]+)%%", lambda m: values[m.group(1)], _PAGE)


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
      content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>panbench judging sheet</title>
<style>
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1100px; padding: 1em; }
header { position: sticky; top: 0; background: #fff; border-bottom: 1px solid #ccc; padding: .5em 0; }
.item { border: 1px solid #ddd; border-radius: 6px; margin: 1em 0; padding: .5em 1em; }
.item.done { border-color: #3a3; background: #f4fbf4; }
.frames { display: flex; flex-wrap: wrap; gap: 4px; }
.frames img { width: calc(25% - 4px); height: auto; border: 1px solid #eee; }
.rubric { white-space: pre-wrap; background: #f6f6f6; padding: .5em; }
button.score { font-size: 1.2em; min-width: 2.5em; margin: 0 .2em; }
button.score.chosen { background: #3a3; color: #fff; }
.note { width: 60%; margin-top: .5em; }
small { color: #666; font-weight: normal; }
</style>
</head>
<body>
<header>
<b>panbench judging sheet</b> ·
<span id="progress">0</span> of %%COUNT%% items scored here
(plus %%CARRIED%% carried from earlier exports) ·
<button type="button" id="export">Export scores</button>
<div>Pick one score per item, then press Export and pass the downloaded file back with
<code>scores=&lt;file&gt;</code>. Choices are kept in this browser until you export.</div>
</header>
<main>
%%ITEMS%%
</main>
<script type="application/json" id="panbench-items">%%MANIFEST%%</script>
<script type="application/json" id="panbench-frames">%%FRAMES%%</script>
<script>
"use strict";
const frameUrls = JSON.parse(document.getElementById("panbench-frames").textContent);
for (const img of document.querySelectorAll("img[data-frame]")) {
  img.src = frameUrls[Number(img.dataset.frame)];
}
const manifest = JSON.parse(document.getElementById("panbench-items").textContent);
const byId = Object.fromEntries(manifest.items.map((it) => [it.id, it]));
const storeKey = "panbench-sheet:" + manifest.items.map((it) => it.id).join("").slice(0, 64);
let chosen = {};
try { chosen = JSON.parse(localStorage.getItem(storeKey) || "{}"); } catch (e) { chosen = {}; }
function save() { try { localStorage.setItem(storeKey, JSON.stringify(chosen)); } catch (e) {} }
function refresh() {
  let done = 0;
  for (const section of document.querySelectorAll("section.item")) {
    const c = chosen[section.dataset.id];
    section.classList.toggle("done", c !== undefined);
    if (c !== undefined) done += 1;
    for (const b of section.querySelectorAll("button.score")) {
      b.classList.toggle("chosen", c !== undefined && Number(b.dataset.value) === c.score);
    }
    const note = section.querySelector("input.note");
    if (c !== undefined && document.activeElement !== note) note.value = c.note || "";
  }
  document.getElementById("progress").textContent = String(done);
}
for (const section of document.querySelectorAll("section.item")) {
  const id = section.dataset.id;
  for (const b of section.querySelectorAll("button.score")) {
    b.addEventListener("click", () => {
      const note = section.querySelector("input.note").value;
      chosen[id] = { score: Number(b.dataset.value), note: note };
      save(); refresh();
    });
  }
  section.querySelector("input.note").addEventListener("input", (ev) => {
    if (chosen[id] !== undefined) { chosen[id].note = ev.target.value; save(); }
  });
}
document.getElementById("export").addEventListener("click", () => {
  const scores = Object.assign({}, manifest.carried);
  for (const [id, c] of Object.entries(chosen)) {
    const it = byId[id];
    if (!it) continue;
    scores[id] = { score: c.score, scale: it.rubric.scale, rubric: it.rubric.tag, note: c.note || "" };
  }
  const out = { format: manifest.export.format, version: manifest.export.version, scores: scores };
  const blob = new Blob([JSON.stringify(out, null, 2) + "\\n"], { type: "application/json" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = "panbench-scores.json";
  document.body.appendChild(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
});
refresh();
</script>
</body>
</html>
"""
