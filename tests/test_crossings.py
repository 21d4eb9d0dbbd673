"""Crossovers between series that are equal (issue 25): equal series, or equal within the metric's tolerance,
never cross; the reports say "equal" instead of inventing an order or a crossing at the first size."""

from __future__ import annotations

import csv

import pandas as pd
import pytest

from effprof.analyse.session import _crossing, analyse, crossovers
from effprof.render import console, export, html
from effprof.store import records

SIZES = (256, 512, 1024, 2048)


def _mamba2_like() -> list[dict]:
    """Two impls of one mechanism: identical peak and state bytes at every size, different FLOPs (the issue's sweep)."""
    rows = []
    for n in SIZES:
        for impl, flops in (("recurrent", 90.0 * n), ("chunked", 60.0 * n + 0.02 * n * n)):
            rows.append({"schema": records.SCHEMA_VERSION, "mechanism": "mamba2", "family": "ssm", "mode": "forward", "seq_len": n,
                         "impl": impl, "status": "ok", "flops_counted": flops, "peak_bytes": 4096.0 * n, "state_bytes": 65536.0})
    return rows


def test_equal_series_have_no_crossover_and_say_equal():
    by_metric = {c["metric"]: c for c in crossovers(records.to_frame(_mamba2_like()))}
    for metric in ("peak_bytes", "state_bytes"):
        c = by_metric[metric]
        assert c["at"] is None and c["equal"] and c["note"] == "equal"
        assert c["cheaper_below"] is None and c["cheaper_above"] is None
    assert by_metric["flops"]["at"] is not None and not by_metric["flops"]["equal"]  # a real crossing is still found


def test_equal_within_the_tolerance_is_equal_and_beyond_it_is_not():
    a = pd.Series({256: 100.0, 512: 200.0, 1024: 400.0})
    assert _crossing(a, a * 1.003, tolerance=0.005)["note"] == "equal"  # counts: 0.3% apart is equal
    assert _crossing(a, a * 1.03, tolerance=0.05)["note"] == "equal"  # time: 3% apart is within the 5% floor
    differ = _crossing(a, a * 1.02, tolerance=0.005)
    assert differ["note"] == "none in range" and differ["cheaper_below"] == "a" and differ["at"] is None
    # equal at the first size, then one cheaper: no crossing (this read as a crossing at the first size before)
    late = _crossing(a, pd.Series({256: 100.0, 512: 150.0, 1024: 300.0}), tolerance=0.005)
    assert late["at"] is None and late["cheaper_below"] == "b" and "equal at 256" in late["note"]
    # a flip through an equal size is a crossing at that size
    through = _crossing(pd.Series({1: 1.0, 2: 2.0, 4: 4.0}), pd.Series({1: 2.0, 2: 2.0, 4: 2.0}), tolerance=0.005)
    assert through["at"] == pytest.approx(2.0) and through["cheaper_below"] == "a"


def test_equal_pairs_read_equal_in_console_latex_csv_and_html(tmp_path):
    session = analyse(_mamba2_like())
    table = console.crossovers_table(session.crossovers)
    from rich.console import Console

    out = Console(width=200, record=True)
    out.print(table)
    for line in console.crossover_lines(session):
        out.print(line)
    text = out.export_text()
    assert "equal (within 0.5% at every size)" in text and "equal at every size (no crossover)" in text
    assert "≈ 256" not in text
    tex = export.latex(session)
    assert "equal" in tex and "neither series is cheaper" in tex and r"\num{256}\\" not in tex.split("Crossovers")[-1]
    written = export.write_csv(session, tmp_path / "m.csv")
    with open(written[2], newline="") as f:
        rows = list(csv.DictReader(f))
    equal = [r for r in rows if r["metric"] in ("peak_bytes", "state_bytes")]
    assert equal and all(r["note"] == "equal" and r["at"] == "" and r["equal"] == "True" for r in equal)
    page = html.render(session, plotlyjs="cdn")
    assert "equal: within 0.5% at every measured size" in page and "pair(s) equal at every measured size" in page
