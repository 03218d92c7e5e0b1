"""Layout checks of built pages in headless Chromium, at several window widths.

Used by ``nox -s browser`` (as a script: ``python tests/browser_layout.py BOARD OUT``) and by
tests/test_browser.py (skipped where no chromium is installed). A copy of each page gets a small
script that, once the page has loaded, writes what it measured into the DOM: the page's scroll
width, each table header's box and each table wrapper's overflow, and whether every image
decoded. ``chromium --dump-dom`` returns it; a screenshot at the same width is kept to look at.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

WIDTHS = (1280, 1920)

_MEASURE = """
<script>
window.addEventListener("load", function () {
  var w = window.innerWidth;
  var box = function (el) { var r = el.getBoundingClientRect(); return [r.left, r.right]; };
  var out = {
    width: w,
    scrollWidth: document.documentElement.scrollWidth,
    columns: Array.prototype.map.call(document.querySelectorAll("table th"), function (th) {
      return {text: th.textContent, box: box(th)};
    }),
    wraps: Array.prototype.map.call(document.querySelectorAll(".table-wrap"), function (d) {
      return [d.scrollWidth, d.clientWidth];
    }),
    images: Array.prototype.map.call(document.images, function (im) {
      return {src: im.getAttribute("src"), ok: im.complete && im.naturalWidth > 0};
    })
  };
  var pre = document.createElement("pre");
  pre.id = "layout-check";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>
"""

_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]


def find_chromium() -> str | None:
    """The chromium binary on PATH, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def instrument(page: Path) -> Path:
    """Writes ``<page>.layout.html`` beside ``page``: the page plus the measuring script."""
    text = page.read_text(encoding="utf-8")
    probe = page.with_name(page.stem + ".layout.html")
    probe.write_text(text.replace("</body>", _MEASURE + "</body>"), encoding="utf-8")
    return probe


def measure(chromium: str, page: Path, width: int, shot: Path | None = None) -> dict[str, Any]:
    """Loads ``page`` at ``width`` px; returns the measurements (and saves a screenshot)."""
    probe = instrument(page)
    size = f"--window-size={width},1600"
    budget = "--virtual-time-budget=8000"  # images decode and load fires before the dump
    dom = subprocess.run(
        [chromium, *_FLAGS, size, budget, "--dump-dom", probe.as_uri()],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    ).stdout
    if shot is not None:
        subprocess.run(
            [chromium, *_FLAGS, size, budget, f"--screenshot={shot}", page.as_uri()],
            capture_output=True,
            timeout=180,
            check=True,
        )
    probe.unlink()
    found = re.search(r'<pre id="layout-check">(.*?)</pre>', dom, re.S)
    if found is None:
        raise AssertionError(f"{page}: the layout script wrote nothing (page did not load?)")
    import html

    return json.loads(html.unescape(found.group(1)))


def problems(m: dict[str, Any]) -> list[str]:
    """What is wrong with a page's layout at its width (empty: every column visible)."""
    width = m["width"]
    found = []
    if m["scrollWidth"] > width:
        found.append(f"the page scrolls sideways: {m['scrollWidth']} px wide at {width} px")
    for col in m["columns"]:
        left, right = col["box"]
        if right > width + 0.5 or left < -0.5:
            found.append(f"column {col['text']!r} is cut off: it spans {left:.0f}-{right:.0f} px")
    for scroll, client in m["wraps"]:
        if scroll > client:
            found.append(f"a table overflows its box: {scroll} px in {client} px")
    found += [f"image {im['src']} did not load" for im in m["images"] if not im["ok"]]
    return found


def check_pages(chromium: str, pages: list[Path], out: Path) -> list[str]:
    """Every page at every width of :data:`WIDTHS`: the problems found, screenshots in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    found = []
    for page in pages:
        for width in WIDTHS:
            shot = out / f"{page.stem}-{width}.png"
            m = measure(chromium, page, width, shot)
            found += [f"{page.name} at {width} px: {p}" for p in problems(m)]
            print(f"{page.name} at {width} px: {len(m['columns'])} columns, "
                  f"{len(m['images'])} images, screenshot {shot}")  # fmt: skip
    return found


def main(argv: list[str]) -> int:
    """``browser_layout.py BOARD OUT``: builds a copy of BOARD in OUT and checks its pages."""
    from panbench.leaderboard import build_leaderboard

    chromium = find_chromium()
    if chromium is None:
        print("chromium is missing", file=sys.stderr)
        return 2
    board, out = Path(argv[0]), Path(argv[1]).resolve()
    copy = out / "board"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(board, copy)  # the committed folder stays as it is
    build_leaderboard(copy)
    pages = [copy / "index.html", *sorted((copy / "tasks").glob("*.html"))[:2]]
    found = check_pages(chromium, pages, out)
    for p in found:
        print(p, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
