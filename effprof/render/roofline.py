"""The roofline of a report, per mode: the measured roofs, the points joined across sizes, and the achieved fraction
of the bound per series at the largest size (HTML, static figures, LaTeX read these).

Roofs: the measured matmul peak of each dtype among the mode's points (a horizontal line each), and two memory
slopes, FLOP/s = intensity × bandwidth, with the bandwidth measured beyond the last-level cache (solid) and in
cache (dotted), each capped by the peak. Points: achieved FLOP/s (counted FLOPs / median time) against arithmetic
intensity (counted FLOPs / bytes moved), one line per series through its sizes in increasing order, the last
marker an arrow pointing the way the size grows.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go

from effprof.analyse.frames import add_labels, fmt_value, is_missing, ok_rows, swept_axis
from effprof.render import axes, style
from effprof.store.metrics import METRICS, human

NEEDED = ("arithmetic_intensity", "achieved_flops_per_s", "peak_flops_per_s", "peak_bytes_per_s")
ROOF_DASH = {"beyond": "solid", "in cache": "dot"}


def roofline_figures(frame: pd.DataFrame) -> list[go.Figure]:
    """One roofline per mode with points that carry the roofline fields (named roofline-<mode>)."""
    ok = ok_rows(frame)
    if ok.empty or not set(NEEDED) <= set(ok.columns):
        return []
    axis = swept_axis(ok)
    ok = add_labels(ok, axis).dropna(subset=list(NEEDED))
    ok = ok[(ok["arithmetic_intensity"] > 0) & (ok["achieved_flops_per_s"] > 0)]
    styles = style.report_styles(frame)
    return [_figure(rows, str(mode), axis, styles) for mode, rows in ok.groupby("mode", sort=False)]


def _figure(ok: pd.DataFrame, mode: str, axis: str | None, styles: dict) -> go.Figure:
    peaks = {str(dtype): float(rows["peak_flops_per_s"].median())
             for dtype, rows in (ok.groupby("dtype", sort=False) if "dtype" in ok.columns else [("", ok)])}
    bandwidths = {"beyond": float(ok["peak_bytes_per_s"].median())}
    if "bandwidth_in_cache_bytes_per_s" in ok.columns and ok["bandwidth_in_cache_bytes_per_s"].notna().any():
        bandwidths["in cache"] = float(ok["bandwidth_in_cache_bytes_per_s"].median())
    unit = axes.unit_for("flops", list(ok["achieved_flops_per_s"]) + list(peaks.values()))
    fig = go.Figure()
    for series, rows in ok.groupby("series", sort=False):
        look = styles[series]
        rows = rows.sort_values(axis) if axis else rows
        symbols = [look.symbol] * (len(rows) - 1) + (["arrow"] if len(rows) > 1 else [look.symbol])
        sizes = [f"{axis}={fmt_value(v)}" for v in rows[axis]] if axis else [""] * len(rows)
        fig.add_trace(go.Scatter(
            x=rows["arithmetic_intensity"], y=unit.scaled(rows["achieved_flops_per_s"]), mode="lines+markers", name=series,
            line={"color": look.color, "width": 1}, customdata=sizes,
            marker={"color": look.color, "symbol": symbols, "size": [8] * (len(rows) - 1) + [13], "angleref": "previous"},
            hovertemplate=f"%{{customdata}}<br>intensity %{{x:.3g}} FLOP/byte<br>%{{y:.3g}} {unit.symbol}/s<extra>%{{fullData.name}}</extra>"))
    low, high = float(ok["arithmetic_intensity"].min()) / 4, float(ok["arithmetic_intensity"].max()) * 4
    shown = unit.scaled(ok["achieved_flops_per_s"])
    for dtype, peak in peaks.items():
        for where, bandwidth in bandwidths.items():
            ridge = peak / bandwidth
            xs = sorted({low, min(max(ridge, low), high), high})
            roof = unit.scaled(min(peak, x * bandwidth) for x in xs)
            shown += roof
            name = f"roof {dtype} ({'memory beyond caches' if where == 'beyond' else 'memory in cache'})".replace("roof  (", "roof (")
            fig.add_trace(go.Scatter(x=xs, y=roof, mode="lines", name=name, line={"color": style.KEY_COLOR, "width": 2, "dash": ROOF_DASH[where]},
                                     hovertemplate=f"matmul peak {peak / unit.scale:.3g} {unit.symbol}/s, bandwidth {human(bandwidth, 'bytes')}/s"
                                                   "<extra></extra>"))
    growth = f" (arrow: the way {axis} grows)" if axis else ""
    fig.update_layout(xaxis=axes.log_axis(METRICS["intensity"].label, [low, high]),
                      yaxis=axes.log_axis(axes.axis_title("achieved throughput", unit.symbol + "/s"), shown))
    title = f"roofline — {mode}: measured matmul peak and bandwidth (beyond caches solid, in cache dotted){growth}"
    return style.screen_layout(fig, title, height=460).update_layout(meta={"name": f"roofline-{mode}"})


def largest_size_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Per mode and series, the point at the largest size: measured time, bound, limit, achieved fraction, intensity,
    and the projection where there is one."""
    ok = ok_rows(frame)
    if ok.empty or "roofline_bound_s" not in ok.columns:
        return []
    axis = swept_axis(ok)
    ok = add_labels(ok, axis)
    ok = ok[ok["roofline_bound_s"].notna()]
    rows = []
    for (mode, series), group in ok.groupby(["mode", "series"], sort=False):
        last = (group.sort_values(axis) if axis else group).iloc[-1]
        rows.append({"mode": mode, "series": series, "size": fmt_value(last[axis]) if axis else "",
                     **{k: (None if k not in last or is_missing(last[k]) else last[k]) for k in (
                         "time_s", "roofline_bound_s", "roofline_limit", "roofline_fraction", "arithmetic_intensity",
                         "projected_time_s", "projected_limit", "projected_hardware")}})
    return rows
