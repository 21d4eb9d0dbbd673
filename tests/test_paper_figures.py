"""Figures for the paper (issue 25): the legend out of the way at the 3.5 in preset, overlapping series visible,
a zero-state series named instead of silently dropped from a log axis, and "noisy" instead of an unjudged exponent."""

from __future__ import annotations

import copy
import io

from rich.console import Console

from effprof.analyse.session import analyse
from effprof.render import style
from effprof.render.console import summary_table
from effprof.render.figures import metric_figures
from effprof.store import records
from effprof.store.metrics import NOISY_MARK

SIZES = (256, 512, 1024, 2048)


def _decode_state() -> list[dict]:
    """mamba and mamba2 keep the same state at every size; moe_topk keeps none; softmax's KV cache grows."""
    rows = []
    for n in SIZES:
        for name, state in (("mamba", 4096.0), ("mamba2", 4096.0), ("moe_topk", 0.0), ("softmax_attention", 64.0 * n)):
            rows.append({"schema": records.SCHEMA_VERSION, "mechanism": name, "family": "x", "mode": "decode", "seq_len": n,
                         "status": "ok", "state_bytes": state, "flops_counted": 10.0 * n})
    return rows


def _figure(rows, name="decode-state"):
    session = analyse(rows)
    return next(fig for _, _, fig in metric_figures(session.frame, session.fits_frame) if fig.layout.meta["name"] == name)


def test_zero_state_series_is_named_not_dropped():
    fig = _figure(_decode_state())
    names = [t.name for t in fig.data if t.showlegend is not False]
    assert "moe_topk: no state" in names  # it was silently missing from the log axis


def test_overlapping_series_get_distinct_dash_patterns():
    fig = _figure(_decode_state())
    lines = {t.name: t.line.dash for t in fig.data if t.name in ("mamba", "mamba2", "softmax_attention")}
    assert lines["mamba"] == style.MEASURED_DASH and lines["softmax_attention"] == style.MEASURED_DASH
    assert lines["mamba2"] in style.OVERLAP_DASHES  # drawn over mamba: visible as its own line
    mamba2 = next(t for t in fig.data if t.name == "mamba2")
    assert "drawn over mamba" in mamba2.hovertemplate


def test_single_column_legend_stays_within_a_fifth_of_the_figure():
    rows = []
    for i in range(8):  # eight series with names of 20+ characters: one entry a row took 33% of the height before
        for n in SIZES:
            rows.append({"schema": records.SCHEMA_VERSION, "mechanism": f"mechanism_number_{i}_x", "family": "x", "mode": "forward",
                         "seq_len": n, "status": "ok", "flops_counted": float(n * (i + 1))})
    fig = _figure(rows, "forward-flops")
    printed = style.print_layout(fig, "single")
    preset = style.PRESETS["single"]
    legend_px = printed.layout.height - preset.height_px
    assert 0 < legend_px <= style.LEGEND_SHARE * printed.layout.height
    assert printed.layout.legend.y > 1  # above the plot, never over the data
    names = [t.name for t in printed.data if t.showlegend is not False]
    assert len(set(names)) == len(names) and all(len(n) <= 30 for n in names)


def test_summary_says_noisy_instead_of_an_unjudged_time_exponent():
    rows = [{"schema": records.SCHEMA_VERSION, "mechanism": "lin", "family": "x", "mode": "forward", "seq_len": n, "status": "ok",
             "flops_counted": 10.0 * n, "time_s": t, "time_iqr_s": 0.9 * t} for n, t in zip(SIZES, (1e-2, 4e-3, 1e-3, 3e-4), strict=True)]
    session = analyse(rows)
    time_fit = next(f for f in session.fits if f["metric"] == "time")
    assert time_fit["uncertain"] and time_fit["exponent"] < 0
    console = Console(file=io.StringIO(), width=200)
    console.print(summary_table(copy.deepcopy(session)))
    text = console.file.getvalue()
    row = next(line for line in text.splitlines() if line.startswith("│ lin "))
    assert f"noisy {NOISY_MARK}" in row.split("│")[4] and "-" not in row.split("│")[4]
