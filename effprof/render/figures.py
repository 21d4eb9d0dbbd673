"""Plotly figures for the HTML report (and static export): one per mode × metric, the roofline, MoE load.

A timed metric's points carry error bars from the quartiles of their timing samples (± IQR/2
where a record has no samples), and a noisy point (IQR/median > 10%) is drawn as an open
diamond, so a reader sees which points a slope or a crossover rests on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from effprof.frames import add_labels, fmt_value, is_missing, noisy_mask, ok_rows, swept_axis
from effprof.metrics import COMPARED, METRICS, NOISE_THRESHOLD, NOISY_MARK

NOISY_SYMBOL = "diamond-open"
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"]
HOVER_KEYS = ("impl", "batch", "seq_len", "d_model", "n_heads", "head_dim", "d_state", "window", "n_experts", "top_k", "dtype", "device")
PER_TOKEN = {"decode": " per generated token"}


def _hover(rows: pd.DataFrame, axis: str) -> list[str]:
    """The config of each point, for hover details."""
    keys = [k for k in HOVER_KEYS if k in rows.columns and k != axis]
    out = []
    for _, row in rows.iterrows():
        parts = [f"{k}={fmt_value(row[k])}" for k in keys if not is_missing(row[k])]
        out.append("<br>".join(parts))
    return out


def _error_bars(rows: pd.DataFrame) -> tuple[list[float], list[float]]:
    """(above, below) the median of each timed point: its samples' upper and lower quartiles, or ± IQR/2."""
    above, below = [], []
    for r in rows.to_dict("records"):
        samples, median = r.get("time_samples_s"), r.get("time_s")
        if isinstance(samples, list) and len(samples) >= 2:
            q1, q3 = np.percentile(samples, [25, 75])
            above.append(max(float(q3) - median, 0.0))
            below.append(max(median - float(q1), 0.0))
        else:
            half = 0.0 if is_missing(r.get("time_iqr_s")) else float(r["time_iqr_s"]) / 2
            above.append(half)
            below.append(half)
    return above, below


def metric_figures(frame: pd.DataFrame, fits: pd.DataFrame | None) -> list[tuple[str, str, go.Figure]]:
    """(mode, title, figure) for each mode × metric with data."""
    ok = ok_rows(frame)
    axis = swept_axis(ok)
    if ok.empty or axis is None:
        return []
    ok = add_labels(ok, axis)
    ok = ok.assign(_noisy=noisy_mask(ok))
    out = []
    for mode, group in ok.groupby("mode", sort=False):
        for entry in COMPARED:
            metric = entry.column
            if metric not in group.columns or not (group[metric].dropna() > 0).any():
                continue
            fig = go.Figure()
            any_noisy = False
            for i, (series, rows) in enumerate(group.groupby("series", sort=False)):
                color = PALETTE[i % len(PALETTE)]
                rows = rows[rows[metric] > 0].sort_values(axis).drop_duplicates(axis)
                if rows.empty:
                    continue
                noisy = rows["_noisy"].tolist() if entry.timed else [False] * len(rows)
                any_noisy = any_noisy or any(noisy)
                hover = [h + (f"<br>{NOISY_MARK} noisy: IQR/median > {100 * NOISE_THRESHOLD:.0f}%" if n else "") for h, n in zip(_hover(rows, axis), noisy)]
                error = None
                if entry.timed:
                    above, below = _error_bars(rows)
                    error = {"type": "data", "array": above, "arrayminus": below, "visible": True, "thickness": 1, "width": 3}
                fig.add_trace(go.Scatter(
                    x=rows[axis], y=rows[metric], mode="lines+markers", name=series, line={"color": color}, error_y=error,
                    marker={"symbol": [NOISY_SYMBOL if n else "circle" for n in noisy], "size": [11 if n else 6 for n in noisy]},
                    customdata=hover,
                    hovertemplate=f"{axis}=%{{x}}<br>%{{y:.4g}}<br>%{{customdata}}<extra>%{{fullData.name}}</extra>",
                ))
                if metric == "flops_counted" and "flops_analytic" in rows.columns:
                    fig.add_trace(go.Scatter(x=rows[axis], y=rows["flops_analytic"], mode="lines", name=f"{series} (analytic)",
                                             line={"color": color, "dash": "dot"}, showlegend=False,
                                             hovertemplate="analytic %{y:.4g}<extra></extra>"))
                _add_fit_line(fig, fits, rows, mode, entry.name, axis, color)
            title = f"{entry.label} — {mode}{PER_TOKEN.get(mode, '') if entry.name in ('flops', 'time') else ''}"
            if any_noisy:
                fig.add_annotation(text=f"◇ open diamonds: noisy timing (IQR/median > {100 * NOISE_THRESHOLD:.0f}%); bars: IQR",
                                   xref="paper", yref="paper", x=0, y=1.0, xanchor="left", yanchor="bottom", showarrow=False, font={"size": 10})
            fig.update_layout(title=title, xaxis={"type": "log", "title": axis}, yaxis={"type": "log", "title": entry.label},
                              template="plotly_white", height=420, legend={"font": {"size": 10}}, margin={"l": 60, "r": 20, "t": 50, "b": 50})
            out.append((mode, title, fig))
    return out


def _add_fit_line(fig: go.Figure, fits: pd.DataFrame | None, rows: pd.DataFrame, mode: str, metric: str, axis: str, color: str) -> None:
    if fits is None or fits.empty:
        return
    mechanism = rows["mechanism"].iloc[0]
    match = fits[(fits["mechanism"] == mechanism) & (fits["mode"] == mode) & (fits["metric"] == metric) & (fits["axis"] == axis)]
    column = METRICS[metric].column
    for fit in match.itertuples():
        if fit.variant and not all(_matches(rows, part) for part in fit.variant.split(",")):
            continue
        sizes = sorted(fit.sizes)
        top = rows[rows[axis] == sizes[-1]][column]
        if top.empty or not top.iloc[0] > 0:
            continue
        xs = [sizes[len(sizes) // 2 - (1 if len(sizes) > 3 else 0)], sizes[-1]]
        ys = [float(top.iloc[0]) * (x / sizes[-1]) ** fit.exponent for x in xs]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line={"color": color, "dash": "dash", "width": 1}, showlegend=False,
                                 hovertemplate=f"fitted slope {fit.exponent:.2f}<extra></extra>"))
        return


def _matches(rows: pd.DataFrame, part: str) -> bool:
    key, _, value = part.partition("=")
    return key in rows.columns and rows[key].map(fmt_value).astype(str).eq(value).all()


def roofline_figure(frame: pd.DataFrame) -> go.Figure | None:
    """Achieved FLOP/s against arithmetic intensity, under the measured compute and bandwidth roofs."""
    ok = ok_rows(frame)
    needed = {"arithmetic_intensity", "achieved_flops_per_s", "peak_flops_per_s", "peak_bytes_per_s"}
    if ok.empty or not needed <= set(ok.columns):
        return None
    ok = ok.dropna(subset=list(needed))
    if ok.empty:
        return None
    ok = add_labels(ok, swept_axis(ok))
    fig = go.Figure()
    for i, (series, rows) in enumerate(ok.groupby("series", sort=False)):
        fig.add_trace(go.Scatter(x=rows["arithmetic_intensity"], y=rows["achieved_flops_per_s"], mode="markers", name=series,
                                 marker={"color": PALETTE[i % len(PALETTE)], "size": 8}, customdata=_hover(rows, ""),
                                 hovertemplate="intensity %{x:.3g} FLOP/B<br>%{y:.3g} FLOP/s<br>%{customdata}<extra>%{fullData.name}</extra>"))
    peak, bandwidth = float(ok["peak_flops_per_s"].median()), float(ok["peak_bytes_per_s"].median())
    low, high = float(ok["arithmetic_intensity"].min()) / 4, float(ok["arithmetic_intensity"].max()) * 4
    ridge = peak / bandwidth
    xs = sorted({low, min(max(ridge, low), high), high})
    fig.add_trace(go.Scatter(x=xs, y=[min(peak, x * bandwidth) for x in xs], mode="lines", name="roof",
                             line={"color": "#555", "width": 2},
                             hovertemplate=f"peak {peak:.3g} FLOP/s, bandwidth {bandwidth:.3g} B/s<extra></extra>"))
    fig.update_layout(title="roofline (measured peak matmul FLOP/s and copy bandwidth)", template="plotly_white", height=440,
                      xaxis={"type": "log", "title": "arithmetic intensity (FLOP / byte moved)"},
                      yaxis={"type": "log", "title": "achieved FLOP/s"}, margin={"l": 60, "r": 20, "t": 50, "b": 50})
    return fig


def expert_load_figure(frame: pd.DataFrame) -> go.Figure | None:
    """Tokens per expert for each MoE series, at its largest size."""
    ok = ok_rows(frame)
    if "expert_load" not in ok.columns:
        return None
    ok = ok[ok["expert_load"].map(lambda v: isinstance(v, list) and len(v) > 0)]
    if ok.empty:
        return None
    axis = swept_axis(ok)
    ok = add_labels(ok, axis)
    fig = go.Figure()
    for i, (series, rows) in enumerate(ok.groupby("series", sort=False)):
        row = rows.sort_values(axis).iloc[-1] if axis else rows.iloc[-1]
        load = row["expert_load"]
        label = f"{series} ({axis}={fmt_value(row[axis])})" if axis else series
        fig.add_trace(go.Bar(x=[f"e{j}" for j in range(len(load))], y=load, name=label, marker={"color": PALETTE[i % len(PALETTE)]}))
    fig.update_layout(title="expert load (tokens routed to each expert)", barmode="group", template="plotly_white", height=400,
                      xaxis={"title": "expert"}, yaxis={"title": "tokens"}, margin={"l": 60, "r": 20, "t": 50, "b": 50})
    return fig
