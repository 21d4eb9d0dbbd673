"""Self-contained HTML report: plotly.js inlined once, no network needed to open it.

Sections: a summary (which claims hold, headline crossovers), the exact command and
the environment, the complexity comparison table, the claims with verdicts,
crossovers, the figures (one log-log plot per mode and metric: measured points,
analytic curve, fitted line), the roofline, per-family panels (MoE expert load,
sparse attention patterns), a baseline comparison when one is given, and the
sortable records table. Rendered from a jinja2 template with autoescaping, so
nothing a user typed reaches the page unescaped.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from effprof.analysis import baseline_diff, complexity_table, crossovers
from effprof.frames import fmt_value, swept_axis
from effprof.render.figures import expert_load_figure, metric_figures, roofline_figure
from effprof.render.series import human

RECORD_COLUMNS = ["mechanism", "family", "mode", "status", "flops_analytic", "flops_counted", "flops_fvcore", "time_s", "time_iqr_s",
                  "peak_bytes", "activation_bytes", "state_bytes", "params", "fraction_of_peak", "error"]
ENV_COLUMNS = ["torch", "device_name", "threads", "effprof", "git_sha", "timestamp", "peak_flops_per_s", "peak_bytes_per_s"]
UNITS = {"time_s": "time", "time_iqr_s": "time", "peak_bytes": "bytes", "activation_bytes": "bytes", "state_bytes": "bytes",
         "flops_analytic": "flops", "flops_counted": "flops", "flops_fvcore": "flops", "params": "flops",
         "peak_flops_per_s": "flops", "peak_bytes_per_s": "bytes"}
MOE_FIELDS = ("aux_loss", "z_loss", "dropped_fraction", "load_cv")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("effprof", "render/templates"),
                             autoescape=jinja2.select_autoescape(default=True, default_for_string=True))
    env.filters["num"] = _num
    env.filters["human"] = human
    return env


def _num(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{float(value):.{digits}f}"


def _div(fig: go.Figure) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False, "responsive": True})


def _records_table(frame: pd.DataFrame, axis: str | None) -> tuple[list[str], list[list[tuple[str, str]]]]:
    """Columns and rows of (shown text, sort key) cells."""
    columns = [c for c in RECORD_COLUMNS if c in frame.columns]
    config = [c for c in ("impl", axis, "d_model", "batch") if c and c in frame.columns and c not in columns]
    columns[3:3] = config
    rows = []
    for record in frame.to_dict("records"):
        cells = []
        for c in columns:
            value = record.get(c)
            missing = value is None or (isinstance(value, float) and math.isnan(value))
            if c in UNITS:
                cells.append((human(value, UNITS[c]), "" if missing else repr(float(value))))
            elif c == "fraction_of_peak":
                cells.append(("–" if missing else f"{100 * float(value):.1f}%", "" if missing else repr(float(value))))
            else:
                text = "" if missing else fmt_value(value)
                cells.append((text, text))
        rows.append(cells)
    return columns, rows


def _summary(fits: pd.DataFrame, crossings: list[dict[str, Any]]) -> dict[str, Any]:
    claimed = fits[fits["verdict"] != "no-claim"] if fits is not None and not fits.empty else pd.DataFrame()
    failing = claimed[claimed["verdict"] == "fail"].to_dict("records") if not claimed.empty else []
    headline = [c for c in crossings if c["at"] is not None and c["metric"] in ("time", "flops")]
    return {"claims": len(claimed), "held": len(claimed) - len(failing), "failing": failing, "crossovers": headline[:12]}


def _moe_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    if "aux_loss" not in frame.columns:
        return []
    rows = frame[frame["aux_loss"].notna()]
    axis = swept_axis(frame)
    keep = ["mechanism", "mode", *([axis] if axis else []), *(c for c in ("n_experts", "top_k", "capacity_factor") if c in rows.columns), *MOE_FIELDS]
    return [{k: (fmt_value(r[k]) if not isinstance(r[k], float) or k not in MOE_FIELDS else f"{r[k]:.4g}") for k in keep if k in r}
            for r in rows.to_dict("records")]


def _layer_breakdown(frame: pd.DataFrame) -> dict[str, Any]:
    """Per-layer-kind FLOPs (analytic, with their share), forward time and decode state of each stack point."""
    flops_cols = sorted(c for c in frame.columns if c.startswith("analytic_flops_"))
    if not flops_cols:
        return {}
    kinds = sorted({c.removeprefix("analytic_flops_") for c in flops_cols} |
                   {c.removeprefix("time_s_") for c in frame.columns if c.startswith("time_s_")} |
                   {c.removeprefix("state_bytes_") for c in frame.columns if c.startswith("state_bytes_") and c != "state_bytes_analytic"})
    axis = swept_axis(frame)
    rows = []
    for record in frame.to_dict("records"):
        flops = {k: record.get(f"analytic_flops_{k}") for k in kinds}
        total = sum(v for v in flops.values() if isinstance(v, (int, float)) and v == v)
        if not total:
            continue
        cells = []
        for k in kinds:
            f, t, st = flops.get(k), record.get(f"time_s_{k}"), record.get(f"state_bytes_{k}")
            share = f"{human(f, 'flops')} ({100 * f / total:.0f}%)" if isinstance(f, (int, float)) and f == f else "–"
            cells.append((share, human(t, "time"), human(st, "bytes")))
        rows.append({"mechanism": record["mechanism"], "mode": record["mode"], "size": fmt_value(record.get(axis)) if axis else "", "cells": cells})
    return {"kinds": kinds, "axis": axis or "", "rows": rows}


def render_report(frame: pd.DataFrame, fits: pd.DataFrame, command: str = "", title: str = "effprof report",
                  baseline: pd.DataFrame | None = None, pattern_panels: list[dict[str, Any]] | None = None) -> str:
    ok = frame[frame["status"] == "ok"] if "status" in frame.columns else frame
    axis = swept_axis(ok)
    crossings = crossovers(frame)
    figures = [{"mode": mode, "title": t, "div": _div(fig)} for mode, t, fig in metric_figures(frame, fits)]
    roofline = roofline_figure(frame)
    load = expert_load_figure(frame)
    columns, rows = _records_table(frame, axis)
    env = {}
    if len(frame):
        first = frame.iloc[0]
        env = {k: (human(first[k], UNITS[k]) + "/s" if k in UNITS else fmt_value(first[k])) for k in ENV_COLUMNS if k in frame.columns}
    diff = baseline_diff(frame, baseline) if baseline is not None else pd.DataFrame()
    families = sorted(set(frame["family"].dropna())) if "family" in frame.columns else []
    family_mechanisms = {f: sorted(set(frame.loc[frame["family"] == f, "mechanism"])) for f in families}
    template = _environment().get_template("report.html.j2")
    return template.render(
        title=title, command=command, environment=env, axis=axis,
        fits=[] if fits is None else fits.to_dict("records"),
        summary=_summary(fits, crossings), crossings=crossings, complexity=complexity_table(frame, fits),
        figures=figures, roofline=_div(roofline) if roofline is not None else "", expert_load=_div(load) if load is not None else "",
        moe_rows=_moe_rows(frame), patterns=pattern_panels or [], layers=_layer_breakdown(frame), families=families, family_mechanisms=family_mechanisms,
        baseline=diff.to_dict("records"), has_baseline=baseline is not None,
        columns=columns, rows=rows, plotlyjs=get_plotlyjs(), n_records=len(frame),
        n_failed=int((frame["status"] != "ok").sum()) if "status" in frame.columns else 0,
    )


def write_report(frame: pd.DataFrame, fits: pd.DataFrame, path: str | Path, command: str = "", title: str = "effprof report",
                 baseline: pd.DataFrame | None = None, pattern_panels: list[dict[str, Any]] | None = None) -> str:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    html = render_report(frame, fits, command, title, baseline, pattern_panels)
    from effprof.records import atomic_writer

    with atomic_writer(path) as f:
        f.write(html)
    return str(path)
