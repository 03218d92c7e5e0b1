"""Tests for the human judge: the judging sheet, its manifest, and exported scores read back."""

from __future__ import annotations

import base64
import io
import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from panbench.errors import ConfigError, DataError
from panbench.judges import (
    WR_FIDELITY_RUBRIC,
    HumanJudge,
    JudgementPending,
    Rubric,
    make_judge,
    read_scores,
    sample_frame_indices,
)
from panbench.judges.human import SHEET_NAME, item_id, read_manifest

FIVE = Rubric(name="five", version="2", text="How tidy is the table? 1-5.", scale=(1, 5), frames=3)


def clip(seed: int, t: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (t, 10, 14, 3), dtype=np.uint8)


class SheetParser(HTMLParser):
    """Collects what the test checks in a sheet, independently of panbench's own reader."""

    def __init__(self) -> None:
        super().__init__()
        self.manifest_text: str | None = None
        self.frames_text: str | None = None
        self.frame_refs: list[int] = []
        self.buttons: dict[str, list[int]] = {}
        self.scripts_with_src: list[str] = []
        self.links: list[str] = []
        self._in_script: str | None = None
        self._section: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script":
            if a.get("src"):
                self.scripts_with_src.append(a["src"] or "")
            self._in_script = a.get("id")
        elif tag == "section":
            self._section = a.get("data-id")
            self.buttons[self._section or ""] = []
        elif tag == "img":
            self.frame_refs.append(int(a["data-frame"] or "-1"))
        elif tag == "button" and "score" in (a.get("class") or ""):
            self.buttons[self._section or ""].append(int(a["data-value"] or "-1"))
        elif tag in ("link", "iframe", "object", "embed"):
            self.links.append(tag)

    def handle_data(self, data: str) -> None:
        if self._in_script == "panbench-items":
            self.manifest_text = (self.manifest_text or "") + data
        elif self._in_script == "panbench-frames":
            self.frames_text = (self.frames_text or "") + data

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = None

    @property
    def table(self) -> list[str]:
        """The page's table of distinct frames (data URLs)."""
        assert self.frames_text is not None
        return list(json.loads(self.frames_text))

    @property
    def images(self) -> list[str]:
        """The data URL each ``<img>`` shows once the page's script has run."""
        return [self.table[i] for i in self.frame_refs]


def parse_sheet(path: Path) -> tuple[SheetParser, dict[str, Any]]:
    parser = SheetParser()
    parser.feed(path.read_text(encoding="utf-8"))
    assert parser.manifest_text is not None
    return parser, json.loads(parser.manifest_text)


def export(path: Path, scores: dict[str, dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"format": "panbench-human-scores", "version": 1, "scores": scores}))
    return path


def pending_ids(judge: HumanJudge, items: list[tuple[np.ndarray, str, Rubric]]) -> list[str]:
    ids = []
    for frames, prompt, rubric in items:
        with pytest.raises(JudgementPending) as info:
            judge.judge(frames, prompt, rubric)
        ids.append(info.value.item_id)
    return ids


ITEMS = [
    (clip(0), "The arm lifts the <red> cup & puts it down </script>", WR_FIDELITY_RUBRIC),
    (clip(1), "The door opens.", WR_FIDELITY_RUBRIC),
    (clip(2, t=40), "Tidy up.", FIVE),
]


def test_sheet_round_trip(tmp_path: Path) -> None:
    sheet = tmp_path / "sheet"
    judge = make_judge("human", sheet=str(sheet), max_side="0")
    assert isinstance(judge, HumanJudge)
    ids = pending_ids(judge, ITEMS)
    assert len(set(ids)) == 3 and judge.pending == ids
    # Asking again for a pending item does not list it twice.
    pending_ids(judge, ITEMS[:1])
    assert judge.pending == ids
    assert not (sheet / SHEET_NAME).exists()
    judge.close()

    html_text = (sheet / SHEET_NAME).read_text(encoding="utf-8")
    parser, manifest = parse_sheet(sheet / SHEET_NAME)
    # Self-contained: no external scripts, styles or frames, no URL to fetch.
    assert parser.scripts_with_src == [] and parser.links == []
    assert "http://" not in html_text and "https://" not in html_text
    assert manifest["format"] == "panbench-human-sheet"
    assert [item["id"] for item in manifest["items"]] == ids
    assert manifest["items"][0]["prompt"] == ITEMS[0][1]
    assert manifest == read_manifest(sheet / SHEET_NAME)
    assert len(parser.images) == sum(r.frames for _, _, r in ITEMS)
    first = ITEMS[0][0][sample_frame_indices(len(ITEMS[0][0]), 8)]
    for url, frame in zip(parser.images[:8], first, strict=True):
        assert url.startswith("data:image/png;base64,")
        with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as im:
            np.testing.assert_array_equal(np.asarray(im.convert("RGB")), frame)
    assert parser.buttons[ids[0]] == [0, 1, 2, 3]
    assert parser.buttons[ids[2]] == [1, 2, 3, 4, 5]
    assert "The arm lifts the &lt;red&gt; cup &amp; puts it down" in html_text

    # Export in the documented format, from the manifest alone.
    given = {ids[0]: 3, ids[1]: 0, ids[2]: 5}
    scores = {
        item["id"]: {
            "score": given[item["id"]],
            "scale": item["rubric"]["scale"],
            "rubric": item["rubric"]["tag"],
            "note": f"note {n}",
        }
        for n, item in enumerate(manifest["items"])
    }
    path = export(tmp_path / "scores.json", scores)
    assert {k: v.score for k, v in read_scores(path).items()} == given

    again = make_judge("human", sheet=sheet, scores=path)
    results = [again.judge(*item) for item in ITEMS]
    assert [s.value for s in results] == [3.0, 0.0, 5.0]
    assert [s.raw for s in results] == ["note 0", "note 1", "note 2"]
    prov = again.provenance()
    assert prov["kind"] == "human" and len(prov["scores_sha256"]) == 64
    again.close()  # nothing pending: the sheet is left as it was
    assert (sheet / SHEET_NAME).read_text(encoding="utf-8") == html_text


def test_partial_export_is_carried_into_the_next_sheet(tmp_path: Path) -> None:
    sheet = tmp_path / "sheet"
    with HumanJudge(sheet) as judge:
        ids = pending_ids(judge, ITEMS)
    path = export(
        tmp_path / "partial.json",
        {ids[1]: {"score": 2, "scale": [0, 3], "rubric": WR_FIDELITY_RUBRIC.tag}},
    )
    with HumanJudge(sheet, scores=path) as judge:
        assert judge.judge(*ITEMS[1]).value == 2.0
        assert pending_ids(judge, [ITEMS[0], ITEMS[2]]) == [ids[0], ids[2]]
    _, manifest = parse_sheet(sheet / SHEET_NAME)
    assert [item["id"] for item in manifest["items"]] == [ids[0], ids[2]]
    assert manifest["carried"][ids[1]]["score"] == 2
    # An export from the new sheet (carried + new) is accepted against it.
    full = {**manifest["carried"]}
    full[ids[0]] = {"score": 1, "scale": [0, 3], "rubric": WR_FIDELITY_RUBRIC.tag}
    full[ids[2]] = {"score": 4, "scale": [1, 5], "rubric": FIVE.tag}
    final = HumanJudge(sheet, scores=export(tmp_path / "full.json", full))
    assert [final.judge(*item).value for item in ITEMS] == [1.0, 2.0, 4.0]


def test_item_id_depends_on_what_is_judged() -> None:
    frames = clip(0)[:8]
    base = item_id(frames, "p", WR_FIDELITY_RUBRIC)
    assert base == item_id(frames.copy(), "p", WR_FIDELITY_RUBRIC)
    bumped = Rubric.from_dict({**WR_FIDELITY_RUBRIC.to_dict(), "version": "9"})
    changed = frames.copy()
    changed[3, 0, 0, 0] ^= 1
    others = {
        item_id(frames, "q", WR_FIDELITY_RUBRIC),
        item_id(frames, "p", bumped),
        item_id(changed, "p", WR_FIDELITY_RUBRIC),
    }
    assert base not in others and len(others) == 3


def test_sheet_embeds_each_distinct_frame_once(tmp_path: Path) -> None:
    still = np.repeat(clip(7, t=1), 3, axis=0)  # 3 identical frames, padded to 8 by sampling
    moving = clip(8, t=8)
    with HumanJudge(tmp_path, max_side=0) as judge:
        pending_ids(judge, [(still, "a", WR_FIDELITY_RUBRIC), (still, "b", WR_FIDELITY_RUBRIC)])
        pending_ids(judge, [(moving, "c", WR_FIDELITY_RUBRIC)])
    parser, _ = parse_sheet(tmp_path / SHEET_NAME)
    # 24 frames shown; 1 distinct frame for both still clips, 8 for the moving one.
    assert len(parser.images) == 24 and len(parser.table) == 9
    assert len(set(parser.images[:16])) == 1
    for url, frame in zip(parser.images[16:], moving, strict=True):
        with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as im:
            np.testing.assert_array_equal(np.asarray(im.convert("RGB")), frame)


def test_sheet_frames_are_downscaled(tmp_path: Path) -> None:
    big = np.random.default_rng(0).integers(0, 256, (4, 300, 1000, 3), dtype=np.uint8)
    with HumanJudge(tmp_path, max_side=100) as judge:
        pending_ids(judge, [(big, "p", FIVE)])
    parser, _ = parse_sheet(tmp_path / SHEET_NAME)
    with Image.open(io.BytesIO(base64.b64decode(parser.images[0].split(",", 1)[1]))) as im:
        assert im.size == (100, 30)


@pytest.fixture
def sheet_ids(tmp_path: Path) -> list[str]:
    with HumanJudge(tmp_path / "sheet") as judge:
        return pending_ids(judge, ITEMS)


def entry(score: Any = 2, scale: Any = (0, 3)) -> dict[str, Any]:
    return {"score": score, "scale": list(scale), "rubric": "wr-action-fidelity@1", "note": ""}


@pytest.mark.parametrize(
    ("make_scores", "match"),
    [
        (lambda ids: {"f" * 64: entry()}, "Unknown item f{64}.*lists 3 item"),
        (lambda ids: {"abc": entry()}, "64 hex digits"),
        (lambda ids: {ids[0]: entry(score=4)}, r"item [0-9a-f]{64}.*integer score in \[0, 3\].*4"),
        (lambda ids: {ids[0]: entry(score=1.5)}, "integer score.*1.5"),
        (lambda ids: {ids[0]: entry(score=True)}, "integer score.*True"),
        (lambda ids: {ids[0]: entry(score=None)}, "integer score.*None"),
        (lambda ids: {ids[0]: entry(scale=(0, 5))}, r"sheet's scale \[0, 3\]"),
        (lambda ids: {ids[0]: entry(scale=(3,))}, r"scale \[low, high\]"),
        (lambda ids: {ids[0]: 2}, "object with 'score'"),
    ],
)
def test_bad_exports_are_rejected(
    tmp_path: Path, sheet_ids: list[str], make_scores: Any, match: str
) -> None:
    path = export(tmp_path / "bad.json", make_scores(sheet_ids))
    with pytest.raises(DataError, match=match):
        HumanJudge(tmp_path / "sheet", scores=path)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "format 'panbench-human-scores'"),
        ('{"format": "something-else", "version": 1, "scores": {}}', "something-else"),
        ('{"format": "panbench-human-scores", "version": 7, "scores": {}}', "version 1.*7"),
        ('{"format": "panbench-human-scores", "version": 1, "scores": []}', "item id -> score"),
    ],
)
def test_malformed_exports_are_rejected(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(DataError, match=match):
        read_scores(path)


def test_missing_export_and_bad_options(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="Cannot read the human scores file"):
        HumanJudge(tmp_path, scores=tmp_path / "nope.json")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="folder"):
        HumanJudge(tmp_path / "file")
    with pytest.raises(ConfigError, match="requires the option 'sheet'"):
        make_judge("human")
