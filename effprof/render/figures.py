"""Plotly figures for the HTML report (and static export): one per mode × metric, MoE load (the roofline: render.roofline).

Units, ticks and titles come from effprof.render.axes, series colours, markers and line styles from
effprof.render.style (one style per series across every figure of a report). A timed metric's points
carry error bars from the quartiles of their timing samples (± IQR/2 where a record has no samples),
and a noisy point (IQR/median > 10%) is ringed, so a reader sees which points a slope or a crossover
rests on.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from effprof.analyse.frames import add_labels, fmt_value, is_missing, noisy_mask, ok_rows, series_rows, swept_axis
from effprof.render import axes, style
from effprof.render.escape import plotly_template_text, plotly_text
from effprof.store.metrics import COMPARED, METRICS

HOVER_KEYS = ("impl", "impl_resolved", "batch", "seq_len", "d_model", "n_heads", "head_dim", "d_state", "window", "n_experts", "top_k", "dtype", "device")


def _hover(rows: pd.DataFrame, axis: str) -> list[str]:
    """The config of each point, for hover details."""
    keys = [k for k in HOVER_KEYS if k in rows.columns and k != axis]
    out = []
    for _, row in rows.iterrows():
        parts = [plotly_text(f"{k}={fmt_value(row[k])}") for k in keys if not is_missing(row[k])]
        out.append("<br>".join(parts))
    return out


def metric_figures(frame: pd.DataFrame, fits: pd.DataFrame | None) -> list[tuple[str, str, go.Figure]]:
    """(mode, title, figure) for each mode × metric with data, in the units and series styles of effprof.render.style."""
    ok = ok_rows(frame)
    axis = swept_axis(ok)
    if ok.empty or axis is None:
        return []
    ok = add_labels(ok, axis)
    styles = style.report_styles(frame)
    out = []
    for mode, group in ok.groupby("mode", sort=False):
        for entry in COMPARED:
            metric = entry.column
            if metric not in group.columns or not (group[metric].dropna() > 0).any():
                continue
            values = group.loc[group[metric] > 0, metric]
            unit = axes.unit_for(axes.metric_kind(metric), values)
            label = axes.metric_label(metric, mode)
            fig, shown, analytic, fitted = go.Figure(), [], False, False
            drawn: dict[str, dict[float, float]] = {}  # each drawn series' values by size, to find overlaps
            for series, rows in group.groupby("series", sort=False):
                look = styles[series]
                measured = rows[rows[metric].notna()]
                rows = rows[rows[metric] > 0].sort_values(axis).drop_duplicates(axis)
                if rows.empty:
                    if not measured.empty and (measured[metric] == 0).all():  # a log axis cannot show 0: say so in the legend
                        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f"{series}: {zero_text(metric)}",
                                                 legendgroup=series, marker={"color": look.color, "symbol": look.symbol + "-open", "size": 7},
                                                 hoverinfo="skip"))
                    continue
                ys = unit.scaled(rows[metric])
                same = style.overlapping(dict(zip(rows[axis].astype(float), ys, strict=True)), drawn)
                drawn[series] = dict(zip(rows[axis].astype(float), ys, strict=True))
                dash = style.OVERLAP_DASHES[(len(same) - 1) % len(style.OVERLAP_DASHES)] if same else style.MEASURED_DASH
                bars = style.time_error_bars(rows, unit) if entry.timed else None
                shown += ys + (style.bar_ends(ys, bars) if bars else [])
                fig.add_trace(go.Scatter(
                    x=rows[axis], y=ys, mode="lines+markers", name=series, legendgroup=series,
                    line={"color": look.color, "dash": dash, "width": 1.5},
                    marker={"color": look.color, "symbol": look.symbol, "size": 7},
                    error_y=bars,
                    customdata=_hover(rows, axis),
                    hovertemplate=(f"{axis}=%{{x}}<br>%{{y:.4g}} {unit.symbol}<br>%{{customdata}}"
                                   + ("<br>drawn over " + plotly_template_text(", ".join(same)) if same else "") + "<extra>%{fullData.name}</extra>"),
                ))
                if metric == "flops_counted" and "flops_analytic" in rows.columns and (rows["flops_analytic"] > 0).any():
                    analytic = True
                    fig.add_trace(go.Scatter(x=rows[axis], y=unit.scaled(rows["flops_analytic"]), mode="lines", name=f"{series} (analytic)",
                                             legendgroup=series, line={"color": look.color, "dash": style.ANALYTIC_DASH, "width": 1.5},
                                             showlegend=False, hovertemplate=f"analytic %{{y:.4g}} {unit.symbol}<extra></extra>"))
                fitted |= _add_fit_line(fig, fits, rows, mode, entry.name, axis, look.color, unit)
                if entry.timed and any(noisy := noisy_mask(rows).tolist()):
                    fig.add_trace(style.noisy_trace([x for x, n in zip(rows[axis], noisy, strict=True) if n],
                                                    [y for y, n in zip(ys, noisy, strict=True) if n],
                                                    show_legend=not any(t.name == style.NOISY_NAME for t in fig.data)))
            for key in style.style_key_traces(analytic, fitted):
                fig.add_trace(key)
            title = f"{entry.label} — {mode}"
            fig.update_layout(xaxis=axes.size_axis(axis, group[axis]),
                              yaxis=axes.log_axis(axes.axis_title(label, unit), shown))
            style.screen_layout(fig, title).update_layout(meta={"name": axes.figure_name(mode, metric)})
            out.append((mode, title, fig))
    return out


def zero_text(metric: str) -> str:
    """What a series whose every value is 0 shows in the legend of a log-axis figure, where 0 cannot be drawn."""
    return "no state" if metric == "state_bytes" else "0 at every size"


def _add_fit_line(fig: go.Figure, fits: pd.DataFrame | None, rows: pd.DataFrame, mode: str, metric: str, axis: str, color: str,
                  unit: axes.Unit) -> bool:
    """The fitted slope through the largest measured size, over the upper half of the sizes; True when drawn."""
    if fits is None or fits.empty:
        return False
    mechanism = rows["mechanism"].iloc[0]
    match = fits[(fits["mechanism"] == mechanism) & (fits["mode"] == mode) & (fits["metric"] == metric) & (fits["axis"] == axis)]
    column = METRICS[metric].column
    for fit in match.itertuples():
        if fit.config and len(series_rows(rows, fit.config)) != len(rows):  # another series of the mechanism
            continue
        sizes = sorted(fit.sizes)
        top = rows[rows[axis] == sizes[-1]][column]
        if top.empty or not top.iloc[0] > 0:
            continue
        xs = [sizes[len(sizes) // 2 - (1 if len(sizes) > 3 else 0)], sizes[-1]]
        ys = [float(top.iloc[0]) * (x / sizes[-1]) ** fit.exponent / unit.scale for x in xs]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line={"color": color, "dash": style.FIT_DASH, "width": 1}, showlegend=False,
                                 hovertemplate=f"fitted slope {fit.exponent:.2f}<extra></extra>"))
        return True
    return False


def expert_load_figure(frame: pd.DataFrame) -> go.Figure | None:
    """Tokens per expert for each MoE series, at its largest size."""
    ok = ok_rows(frame)
    if "expert_load" not in ok.columns:
        return None
    axis = swept_axis(ok)
    ok = add_labels(ok, axis)  # labelled as in every other figure
    ok = ok[ok["expert_load"].map(lambda v: isinstance(v, list) and len(v) > 0)]
    if ok.empty:
        return None
    styles = style.report_styles(frame)
    fig = go.Figure()
    for series, rows in ok.groupby("series", sort=False):
        row = rows.sort_values(axis).iloc[-1] if axis else rows.iloc[-1]
        load = row["expert_load"]
        label = f"{series} ({axis}={fmt_value(row[axis])})" if axis else series
        fig.add_trace(go.Bar(x=[f"e{j}" for j in range(len(load))], y=load, name=label, marker={"color": styles[series].color},
                             hovertemplate="%{x}: %{y} tokens<extra>%{fullData.name}</extra>"))
    fig.update_layout(barmode="group", xaxis={"title": {"text": "expert"}}, yaxis={"title": {"text": "load (tokens)"}, "rangemode": "tozero"})
    return style.screen_layout(fig, "expert load (tokens routed to each expert)", height=400).update_layout(meta={"name": "expert-load"})
