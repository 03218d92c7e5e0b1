"""Pages in headless Chromium at 1280 and 1920 px: no sideways scrolling, every column visible,
every image loaded. Skipped where chromium is not installed (``nox -s browser`` installs it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser_layout import check_pages, find_chromium
from tests.test_pages import board  # noqa: F401 (the built board with rollouts)

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")


def test_board_pages_fit_both_widths(board: Path, tmp_path: Path) -> None:  # noqa: F811
    assert CHROMIUM is not None
    pages = [board / "index.html", board / "tasks" / "mini-agent.html"]
    assert check_pages(CHROMIUM, pages, tmp_path) == []
    assert (tmp_path / "index-1280.png").stat().st_size > 10_000


def test_the_check_sees_a_cut_off_table(tmp_path: Path) -> None:
    assert CHROMIUM is not None
    cells = "".join(f"<th>column number {i} of a very wide table</th>" for i in range(30))
    page = tmp_path / "wide.html"
    page.write_text(f"<html><body><table><tr>{cells}</tr></table></body></html>")
    found = check_pages(CHROMIUM, [page], tmp_path)
    assert any("cut off" in p for p in found)
    assert any("scrolls sideways" in p for p in found)
