"""Comparison figures: every kind is written as valid PNG and SVG, colours are stable per model."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib.image
import pytest

from panbench.cli import main
from panbench.plots import (
    FIXED_COLORS,
    PALETTE,
    PlotError,
    headline_scores,
    load_runs,
    model_colors,
    plot_results,
)
from tests.leaderboard_runs import mini_run

MODELS = ("oracle", "copy-last", "random-action")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("plots")
    runs = load_runs([mini_run(m) for m in MODELS])
    return {p.name: p for p in plot_results(runs, out)}


def _svg_colors(path: Path) -> set[str]:
    return {c.lower() for c in re.findall(r"#[0-9A-Fa-f]{6}\b", path.read_text())}


def test_every_figure_is_written_as_valid_png_and_svg(figures: dict[str, Path]) -> None:
    stems = {"scores", "radar", "drift-mini-agent", "drift-mini-long", "drift-mini-choice"}
    stems.add("budget-mini-plan")
    assert set(figures) == {f"{s}.{ext}" for s in stems for ext in ("png", "svg")}
    for name, path in figures.items():
        if name.endswith(".png"):
            assert path.read_bytes()[:8] == PNG_SIGNATURE
            img = matplotlib.image.imread(path)
            assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
            assert img.std() > 0.01  # not a blank canvas
        else:
            root = ET.parse(path).getroot()
            assert root.tag == "{http://www.w3.org/2000/svg}svg"


def test_each_model_has_one_colour_in_every_figure(figures: dict[str, Path]) -> None:
    colors = model_colors(MODELS)
    for name, path in figures.items():
        if name.endswith(".svg"):
            found = _svg_colors(path)
            for model in MODELS:
                assert colors[model].lower() in found, (name, model)


def test_colours_do_not_depend_on_order_or_company() -> None:
    labels = ["zeta", "alpha", "copy-last", "mid", "oracle"]
    full = model_colors(labels)
    assert model_colors(reversed(labels)) == full
    assert len(set(full.values())) == len(labels)
    assert full["oracle"] == FIXED_COLORS["oracle"]
    assert full["copy-last"] == FIXED_COLORS["copy-last"]
    assert model_colors(["copy-last"])["copy-last"] == full["copy-last"]
    assert all(c in PALETTE for c in full.values())
    many = model_colors([f"m{i:02d}" for i in range(40)])  # past the palette: colours repeat
    assert set(many.values()) <= set(PALETTE)


def test_the_palette_is_distinct_and_in_the_fixed_colours() -> None:
    assert len(set(PALETTE)) == len(PALETTE)
    assert set(FIXED_COLORS.values()) <= set(PALETTE)
    assert len(set(FIXED_COLORS.values())) == len(FIXED_COLORS)


def test_headline_cis_map_the_metric_ci_onto_the_score() -> None:
    results = json.loads((mini_run("random-action") / "results.json").read_text())
    scores = headline_scores(results)
    for task, entry in results["tasks"].items():
        metric = entry["headline"]["metric"]
        lo, hi = entry["metrics"][metric]["ci95"]
        s = scores[task]
        assert s.metric == metric
        assert s.score == pytest.approx(entry["headline"]["score"])
        # every headline in the mini suite is 100 x a fraction in [0, 1]
        assert s.low == pytest.approx(100 * lo) and s.high == pytest.approx(100 * hi)
        assert s.low <= s.score <= s.high


def test_plots_are_reproducible(tmp_path: Path) -> None:
    runs = load_runs([mini_run("oracle"), mini_run("copy-last")])
    a = plot_results(runs, tmp_path / "a", formats=["svg"])
    b = plot_results(runs, tmp_path / "b", formats=["svg"])
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]


def test_results_of_different_suites_are_refused() -> None:
    with pytest.raises(PlotError, match="one suite"):
        load_runs([mini_run("oracle"), mini_run("oracle", version=2)])


def test_runs_of_the_same_model_get_distinct_labels() -> None:
    runs = load_runs([mini_run("oracle"), mini_run("oracle", limit=3)])
    labels = [label for label, _ in runs]
    assert len(set(labels)) == 2 and all(lab.startswith("oracle (") for lab in labels)


def test_bad_formats_are_refused(tmp_path: Path) -> None:
    from panbench.errors import ConfigError

    runs = load_runs([mini_run("oracle")])
    with pytest.raises(ConfigError, match="formats"):
        plot_results(runs, tmp_path, formats=["jpg"])


def test_the_cli_writes_figures(tmp_path: Path) -> None:
    out = tmp_path / "figs"
    code = main(["plot", str(mini_run("oracle")), str(mini_run("copy-last")), "--out", str(out)])
    assert code == 0
    assert (out / "scores.png").is_file() and (out / "scores.svg").is_file()
    bad = main(["plot", str(mini_run("oracle")), str(mini_run("oracle", version=2)), "--out", "x"])
    assert bad == 2
