"""Large result files in the report (issue 14): repeated points drawn once, the records table paged.

A file of many records of few points (a benchmark's repeats, merged runs) is shown as one row and one
marker per point — the median, with the count n — and a file of many points keeps them all in the
records table, which the page draws PAGE_ROWS at a time from compact JSON. The 100,000-record
benchmark of the README is the slow test at the end (`pytest -m slow`).
"""

from __future__ import annotations

import base64
import json
import re
import statistics
from typing import Any

import numpy as np
import pytest

from effprof.analyse.points import aggregate
from effprof.analyse.session import Session, analyse
from effprof.render.html import MAX_FIGURE_SERIES, PAGE_ROWS, records_data, render
from effprof.store.records import to_frame
from effprof.store.synthetic import records as synthetic_records


def synthetic(series: int, sizes: int, repeats: int, seed: int = 0) -> list[dict[str, Any]]:
    """series × sizes × repeats records of effprof.store.synthetic: FLOPs ∝ n² exactly, time ∝ n² with 3% log-normal noise."""
    return list(synthetic_records(series=series, sizes=sizes, repeats=repeats, exponents=(2.0, 0.0), second=0.0, noise=0.03, seed=seed))


def _table(page: str) -> dict[str, Any]:
    data = page[page.index('id="records-data">') + len('id="records-data">'):]
    return json.loads(data[:data.index("</script>")])


def test_repeated_points_are_shown_once_as_their_median_with_a_count():
    records = synthetic(series=2, sizes=4, repeats=300)
    points = aggregate(to_frame(records))
    assert len(points) == 8 and set(points["n"]) == {300}
    first = [r["time_s"] for r in records[:300]]
    assert points["time_s"].iloc[0] == pytest.approx(statistics.median(first))
    assert len(points["time_samples_s"].iloc[0]) == 101  # 2100 pooled samples kept as their percentiles
    assert points["time_samples_s"].iloc[0][25] == pytest.approx(np.percentile(np.concatenate([r["time_samples_s"] for r in records[:300]]), 25))

    page = render(analyse(records))
    assert "2400 records of 8 distinct points" in page
    table = _table(page)
    names = [c["name"] for c in table["columns"]]
    assert len(table["rows"]) == 8 and "n" in names and {row[names.index("n")] for row in table["rows"]} == {300}
    time_figure = next(div for div in re.findall(r"Plotly\.newPlot\((.*?)\)\s*\};", page, re.DOTALL) if "time per forward pass" in div)
    lengths = _x_lengths(time_figure)
    assert lengths and max(lengths) == 4  # one marker per size, not 300


def _x_lengths(figure: str) -> list[int]:
    """How many x values each trace of a figure's JSON has (plotly writes arrays as base64 'bdata' or as lists)."""
    out = [len(np.frombuffer(base64.b64decode(data), dtype=np.dtype(kind))) for kind, data in re.findall(r'"x":\{"dtype":"(\w+)","bdata":"([^"]*)"', figure)]
    return out + [len(json.loads(f"[{x}]")) for x in re.findall(r'"x":\[([^\]]*)\]', figure)]


def test_distinct_failures_stay_apart_and_singletons_pass_through():
    records = synthetic(series=1, sizes=3, repeats=1)
    frame = to_frame(records)
    assert aggregate(frame)["n"].tolist() == [1, 1, 1]
    failed = [dict(records[0], status="error", error=f"RuntimeError: {i % 2}", time_s=None) for i in range(4)]
    points = aggregate(to_frame(records + failed))
    errors = points[points["status"] == "error"]
    assert sorted(errors["error"]) == ["RuntimeError: 0", "RuntimeError: 1"] and errors["n"].tolist() == [2, 2]


def test_many_points_keep_every_row_and_figures_draw_a_readable_number_of_series():
    records = synthetic(series=MAX_FIGURE_SERIES + 2, sizes=4, repeats=1)
    frame = to_frame(records)
    table = records_data(aggregate(frame), "seq_len")
    assert len(table["rows"]) == len(records) > PAGE_ROWS and table["page"] == PAGE_ROWS
    mechanisms = table["columns"][0]
    assert mechanisms["name"] == "mechanism" and len(mechanisms["values"]) == MAX_FIGURE_SERIES + 2  # text stored once per column
    assert all(isinstance(row[0], int) for row in table["rows"])
    page = render(Session(records=records, fits=[], crossovers=[], complexity=[], axis="seq_len"))  # no fits needed to draw
    assert f"{MAX_FIGURE_SERIES + 2} mechanisms were measured; the figures draw the first {MAX_FIGURE_SERIES} series" in page
    figures = page[page.index('id="figures"'):]
    figures = figures[:figures.index("</section>")]
    assert f"synthetic_{MAX_FIGURE_SERIES - 1:05d}" in figures and f"synthetic_{MAX_FIGURE_SERIES:05d}" not in figures
    assert len(_table(page)["rows"]) == len(records)


@pytest.mark.slow
def test_a_report_of_100k_records_stays_small(tmp_path):
    """The README benchmark's file (25,000 repeats of 4 sizes): the page is a few MB and its table 4 rows."""
    from typer.testing import CliRunner

    from effprof.cli import app

    path = tmp_path / "big.jsonl"
    with path.open("w", encoding="utf-8") as f:
        for record in synthetic(series=1, sizes=4, repeats=25_000):
            f.write(json.dumps(record) + "\n")
    done = CliRunner().invoke(app, ["report", str(path), "-o", str(tmp_path / "big.html")])
    assert done.exit_code == 0, done.output
    page = (tmp_path / "big.html").read_text(encoding="utf-8")
    assert len(page.encode()) <= 20 * 2**20
    assert "100000 records of 4 distinct points" in page and len(_table(page)["rows"]) == 4


def test_a_mechanism_with_many_variants_is_capped_by_series():
    """Series, not mechanisms, are what a figure draws: one mechanism swept over 30 impls draws 24 of them."""
    from effprof.render.html import _figure_points

    records = [dict(r, impl=f"v{i}") for i in range(MAX_FIGURE_SERIES + 6) for r in synthetic(series=1, sizes=3, repeats=1)]
    drawn, left_out = _figure_points(aggregate(to_frame(records)))
    assert left_out == f"{MAX_FIGURE_SERIES + 6} series"
    assert sorted(drawn["impl"].unique()) == sorted(f"v{i}" for i in range(MAX_FIGURE_SERIES))
    few = aggregate(to_frame(records[:9]))  # 3 series: all drawn, nothing to say
    assert _figure_points(few)[1] == "" and len(_figure_points(few)[0]) == 9
