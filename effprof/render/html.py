"""Self-contained HTML report: plotly.js inlined once, no network needed to open it.

Sections: the exact command and the environment; the claims table with verdicts;
one log-log figure per mode and metric (measured points, the analytic curve, the
fitted line over the fitted range); the records table. Rendered from a jinja2
template with autoescaping, so nothing a user typed reaches the page unescaped.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from effprof.render.series import METRIC_LABELS, add_labels, fmt_value, human, swept_axis

PLOT_METRICS = ["flops_counted", "time_s", "peak_bytes", "activation_bytes", "state_bytes"]
FIT_METRIC = {"flops_counted": "flops", "time_s": "time", "peak_bytes": "peak_bytes", "activation_bytes": "activation_bytes", "state_bytes": "state_bytes"}
RECORD_COLUMNS = ["mechanism", "mode", "status", "flops_analytic", "flops_counted", "flops_fvcore", "time_s", "time_iqr_s", "peak_bytes", "activation_bytes", "state_bytes", "params", "error"]
ENV_COLUMNS = ["torch", "device_name", "threads", "effprof", "git_sha", "timestamp"]
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"]


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("effprof", "render/templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    )


def figures(frame: pd.DataFrame, fits: pd.DataFrame) -> list[dict[str, str]]:
    """One plotly figure (as an HTML div, no script source) per mode × metric."""
    ok = frame[frame["status"] == "ok"] if "status" in frame.columns else frame
    axis = swept_axis(ok)
    if ok.empty or axis is None:
        return []
    ok = add_labels(ok, axis)
    out = []
    for mode, group in ok.groupby("mode", sort=False):
        for metric in PLOT_METRICS:
            if metric not in group.columns or group[metric].dropna().le(0).all() or group[metric].isna().all():
                continue
            fig = go.Figure()
            for i, (series, rows) in enumerate(group.groupby("series", sort=False)):
                color = PALETTE[i % len(PALETTE)]
                points = rows.groupby(axis)[metric].median().dropna()
                points = points[points > 0]
                if points.empty:
                    continue
                fig.add_trace(go.Scatter(x=points.index, y=points.values, mode="lines+markers", name=series, line={"color": color},
                                         hovertemplate=f"{axis}=%{{x}}<br>%{{y:.4g}}<extra>{_escape_plotly(series)}</extra>"))
                if metric == "flops_counted" and "flops_analytic" in rows.columns:
                    analytic = rows.groupby(axis)["flops_analytic"].median().dropna()
                    fig.add_trace(go.Scatter(x=analytic.index, y=analytic.values, mode="lines", name=f"{series} (analytic)",
                                             line={"color": color, "dash": "dot"}, showlegend=False))
                _add_fit_line(fig, fits, rows, mode, FIT_METRIC[metric], axis, color, series)
            fig.update_layout(
                title=f"{METRIC_LABELS[metric]} — {mode}", xaxis={"type": "log", "title": axis},
                yaxis={"type": "log", "title": METRIC_LABELS[metric]}, template="plotly_white", height=420,
                legend={"font": {"size": 10}}, margin={"l": 60, "r": 20, "t": 50, "b": 50},
            )
            out.append({"title": f"{METRIC_LABELS[metric]} — {mode}", "div": fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False})})
    return out


def _escape_plotly(text: str) -> str:
    return text.replace("<", "&lt;").replace(">", "&gt;")


def _add_fit_line(fig: go.Figure, fits: pd.DataFrame, rows: pd.DataFrame, mode: str, metric: str, axis: str, color: str, series: str) -> None:
    if fits is None or fits.empty:
        return
    mechanism = rows["mechanism"].iloc[0]
    match = fits[(fits["mechanism"] == mechanism) & (fits["mode"] == mode) & (fits["metric"] == metric) & (fits["axis"] == axis)]
    for fit in match.itertuples():
        if fit.variant and not all(_matches(rows, part) for part in fit.variant.split(",")):
            continue
        sizes = sorted(fit.sizes)
        column = {"flops": "flops_counted", "time": "time_s"}.get(metric, metric)
        y = rows.groupby(axis)[column].median()
        top = sizes[-1]
        if top not in y.index or not y[top] > 0:
            continue
        anchor = float(y[top])
        xs = [sizes[0], top]
        ys = [anchor * (x / top) ** fit.exponent for x in xs]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line={"color": color, "dash": "dash", "width": 1},
                                 name=f"fit {series}: slope {fit.exponent:.2f}", showlegend=False,
                                 hovertemplate=f"fitted slope {fit.exponent:.2f}<extra></extra>"))
        return


def _matches(rows: pd.DataFrame, part: str) -> bool:
    key, _, value = part.partition("=")
    return key in rows.columns and rows[key].astype(str).map(lambda v: fmt_value(_num(v))).eq(value).all()


def _num(v: str) -> Any:
    try:
        f = float(v)
        return f
    except ValueError:
        return v


def _records_rows(frame: pd.DataFrame, axis: str | None) -> tuple[list[str], list[list[str]]]:
    columns = [c for c in RECORD_COLUMNS if c in frame.columns]
    if axis and axis not in columns:
        columns.insert(1, axis)
    config = [c for c in ("impl", "variant") if c in frame.columns and c not in columns]
    columns[1:1] = config
    units = {"time_s": "time", "time_iqr_s": "time", "peak_bytes": "bytes", "activation_bytes": "bytes", "state_bytes": "bytes"}
    body = []
    for record in frame.to_dict("records"):
        row = []
        for c in columns:
            value = record.get(c)
            if c in units or c.startswith("flops") or c == "params":
                row.append(human(value, units.get(c, "flops")))
            else:
                row.append("" if value is None or (isinstance(value, float) and math.isnan(value)) else fmt_value(value))
        body.append(row)
    return columns, body


def render_report(frame: pd.DataFrame, fits: pd.DataFrame, command: str = "", title: str = "effprof report", extra_sections: list[dict[str, Any]] | None = None) -> str:
    axis = swept_axis(frame[frame["status"] == "ok"]) if "status" in frame.columns else swept_axis(frame)
    columns, rows = _records_rows(frame, axis)
    env = {}
    if len(frame):
        first = frame.iloc[0]
        env = {k: fmt_value(first[k]) for k in ENV_COLUMNS if k in frame.columns}
    fit_rows = [] if fits is None else fits.to_dict("records")
    template = _environment().get_template("report.html.j2")
    return template.render(
        title=title, command=command, environment=env, fits=fit_rows, figures=figures(frame, fits),
        columns=columns, rows=rows, plotlyjs=get_plotlyjs(), n_records=len(frame),
        n_failed=int((frame["status"] != "ok").sum()) if "status" in frame.columns else 0,
        extra_sections=extra_sections or [], json_fits=json.dumps(fit_rows, default=str),
    )


def write_report(frame: pd.DataFrame, fits: pd.DataFrame, path: str | Path, command: str = "", title: str = "effprof report",
                 extra_sections: list[dict[str, Any]] | None = None) -> str:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    html = render_report(frame, fits, command, title, extra_sections)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)
    return str(path)
