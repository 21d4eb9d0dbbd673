"""The report in a real browser: headless Chromium loads it offline and we read back what it drew.

The page's last script writes what a reader would check into <body data-*>: script errors, how many
plots exist and were drawn, which plots have no data, every axis title, and where each section
starts. Chromium's --dump-dom returns that; --screenshot of a window as tall as the page, cut at
the section offsets, gives pictures of the top, the figures and the tables (kept under tmp_path;
set EFFPROF_SCREENSHOTS=DIR to keep them in DIR for a look).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from effprof.analyse.points import aggregate
from effprof.analyse.session import analyse
from effprof.render.html import PAGE_ROWS, _compact, records_data, write
from effprof.store.metrics import human
from tests.test_report import _breakdown_frame, _frame

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--hide-scrollbars", "--virtual-time-budget=10000"]
WIDTH = 1300
UNIT = re.compile(r"\([^()]+\)\s*$")  # an axis title ends in its unit: "(ms)", "(tokens)", "(%)"

if CHROMIUM is None:
    pytestmark = pytest.mark.skipif(os.environ.get("CI") != "true", reason="Chromium is not installed (.ci/run installs it)")


def _chromium(url: str, *args: str, height: int = 1400) -> str:
    assert CHROMIUM, "Chromium is missing: .ci/run installs it (apt-get install chromium)"
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--window-size={WIDTH},{height}", *args, url],
                              check=False, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _page(path: str | Path, query: str = "") -> tuple[dict[str, Any], str]:
    """The body's data-* values (JSON-decoded) and the DOM, after the page loaded."""
    dom = _chromium(f"file://{path}{query}", "--dump-dom")
    body = re.search(r"<body([^>]*)>", dom).group(1)
    data = {k: html.unescape(v) for k, v in re.findall(r'data-([a-z]+)="([^"]*)"', body)}
    assert "errors" in data, "the page's load script did not run"
    return {k: json.loads(v) for k, v in data.items()}, dom


def _check_page(data: dict[str, Any]) -> None:
    """No script error, every plot drawn with data in it, every axis title with its unit (category axes name things)."""
    assert data["errors"] == []
    assert data["plots"] >= 1 and data["rendered"] == data["plots"]
    assert data["empty"] == []
    for axis in data["axes"]:
        if axis["type"] != "category":
            assert UNIT.search(axis["title"]), f"{axis['plot']!r}: the {axis['axis']} title {axis['title']!r} has no unit"


@pytest.mark.parametrize("noisy", [False, True], ids=["quiet", "noisy"])
def test_report_renders_without_errors(tmp_path, noisy):
    """Both pages draw every plot without a JavaScript error; the noisy one with open markers and IQR bars."""
    if noisy:
        from tests.test_session import _crossing_records

        path = write(analyse(_crossing_records(noisy_at=32)), tmp_path / "report.html")
    else:
        path = write(analyse(_frame(), command="effprof compare m"), tmp_path / "report.html")
    data, _ = _page(path)
    _check_page(data)
    assert data["plots"] >= (2 if noisy else 4)  # flops, time (, peak memory, state)


def _cells(dom: str) -> list[list[str]]:
    table = re.search(r'<table id="records-table".*?</table>', dom, re.DOTALL).group(0)
    return [[html.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL)]
            for row in re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1], re.DOTALL)]


def test_screenshots_units_breakdown_and_records_table(tmp_path):
    """A report with a per-module breakdown: screenshots of the top, the figures and the tables; the share
    figures drawn; the records table drawn in the browser reads exactly as metrics.human writes it."""
    frame = _breakdown_frame()
    session = analyse(frame, command="effprof compare m --vary seq_len=64,128,256,512")
    path = write(session, tmp_path / "report.html")
    data, dom = _page(path)
    _check_page(data)
    titles = [a["plot"] for a in data["axes"]]
    assert any("by submodule" in t for t in titles)  # "Where the cost goes"
    assert 'id="module-fits"' in dom

    # The records table, drawn by the page from the embedded JSON, shows what Python's human() would.
    table = records_data(aggregate(frame), session.axis)
    names = [c["name"] for c in table["columns"]]
    shown = _cells(dom)
    assert len(shown) == min(PAGE_ROWS, len(frame))
    for row, record in zip(shown, aggregate(frame).to_dict("records"), strict=False):
        for name, text in zip(names, row, strict=False):
            if name in ("flops_counted", "time_s", "peak_bytes", "state_bytes", "params"):
                assert text.replace(" †", "") == human(_compact(record[name]), name), (name, text)

    # Screenshots: one window as tall as the page, cut at the sections.
    offsets = data["offsets"]
    full = tmp_path / "full.png"
    _chromium(f"file://{path}", f"--screenshot={full}", height=min(offsets["height"], 12000))
    from PIL import Image

    keep = Path(os.environ.get("EFFPROF_SCREENSHOTS", tmp_path))
    keep.mkdir(parents=True, exist_ok=True)
    with Image.open(full) as image:
        for name, top in (("top", 0), ("figures", offsets["figures"]), ("cost", offsets["cost"]), ("tables", offsets["claims"])):
            part = image.crop((0, max(0, top - 40), WIDTH, min(image.height, top + 1100))).convert("RGB")
            part.save(keep / f"report-{name}.png")
            assert len(part.getcolors(maxcolors=1 << 16) or range(1 << 16)) > 50, f"the {name} screenshot is blank"


def test_records_filter_from_the_address(tmp_path):
    """report.html?filter=... opens the records table filtered; every word must match."""
    path = write(analyse(_frame(), command="effprof compare m"), tmp_path / "report.html")
    _, dom = _page(path, "?filter=FORWARD%20128")
    rows = _cells(dom)
    assert len(rows) == 2 and all("128" in row for row in rows)  # impl a and b at seq_len 128
    assert "(filtered from 8)" in dom
    _, dom = _page(path, "?filter=forward%20no-such-mechanism")
    assert _cells(dom) == [] and "rows 0–0 of 0 (filtered from 8)" in dom
