"""Self-contained HTML report: plotly.js inlined once, no network needed to open it.

Sections: a summary (which claims hold, headline crossovers), the exact command and
the environment, the complexity comparison table, the claims with verdicts,
crossovers, the figures (one log-log plot per mode and metric: measured points,
analytic curve, fitted line), the roofline, per-family panels (MoE expert load,
sparse attention patterns), a baseline comparison when one is given, and the
sortable records table. It renders a Session (effprof.analysis) and computes nothing.
Noisy timings (IQR/median > 10%) carry a † in every table, a distinct open marker with
IQR error bars in the plots, and crossovers or time verdicts resting on them are marked
uncertain. Rendered from a jinja2 template with autoescaping, so nothing a user typed
reaches the page unescaped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from effprof.analysis import Session, analyse
from effprof.frames import fmt_value, is_missing, ok_rows, swept_axis
from effprof.metrics import NOISE_THRESHOLD, NOISY_MARK, human, is_noisy, relative_spread, unit_of
from effprof.render.figures import expert_load_figure, metric_figures, roofline_figure

RECORD_COLUMNS = ["mechanism", "family", "mode", "status", "flops_analytic", "flops_counted", "flops_fvcore", "time_s", "time_iqr_s",
                  "peak_bytes", "activation_bytes", "state_bytes", "params", "fraction_of_peak", "load_avg_1m", "error"]
ENV_COLUMNS = ["torch", "device_name", "threads", "cpu_count", "effprof", "git_sha", "timestamp", "peak_flops_per_s", "peak_bytes_per_s"]
UNIT_COLUMNS = {"time_s", "time_iqr_s", "peak_bytes", "activation_bytes", "state_bytes", "flops_analytic", "flops_counted", "flops_fvcore",
                "params", "peak_flops_per_s", "peak_bytes_per_s"}
MOE_FIELDS = ("aux_loss", "z_loss", "dropped_fraction", "load_cv")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("effprof", "render/templates"),
                             autoescape=jinja2.select_autoescape(default=True, default_for_string=True))
    env.filters["num"] = _num
    env.filters["human"] = human
    return env


def _num(value: Any, digits: int = 2) -> str:
    if is_missing(value) or not isinstance(value, (int, float)):
        return "–"
    return f"{float(value):.{digits}f}"


def _div(fig: go.Figure) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False, "responsive": True})


def _records_table(frame: pd.DataFrame, axis: str | None) -> tuple[list[str], list[list[tuple[str, str, str]]]]:
    """Columns and rows of (shown text, sort key, note) cells; a noisy timing is marked and says why in its note."""
    columns = [c for c in RECORD_COLUMNS if c in frame.columns]
    config = [c for c in ("impl", axis, "d_model", "batch") if c and c in frame.columns and c not in columns]
    columns[3:3] = config
    rows = []
    for record in frame.to_dict("records"):
        cells = []
        for c in columns:
            value = record.get(c)
            missing = is_missing(value)
            if c in UNIT_COLUMNS:
                text, note = human(value, unit_of(c)), ""
                if c == "time_s" and is_noisy(record):
                    text, note = f"{text} {NOISY_MARK}", f"noisy: IQR/median {100 * relative_spread(record):.0f}% > {100 * NOISE_THRESHOLD:.0f}%"
                cells.append((text, "" if missing else repr(float(value)), note))
            elif c == "fraction_of_peak":
                cells.append(("–" if missing else f"{100 * float(value):.1f}%", "" if missing else repr(float(value)), ""))
            elif c == "load_avg_1m":
                busy = not missing and not is_missing(record.get("cpu_count")) and float(value) > float(record["cpu_count"])
                cells.append(("" if missing else f"{float(value):.2f}" + (f" {NOISY_MARK}" if busy else ""), "" if missing else repr(float(value)),
                              "busy: load above the core count" if busy else ""))
            else:
                text = "" if missing else fmt_value(value)
                cells.append((text, text, ""))
        rows.append(cells)
    return columns, rows


def _moe_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    if "aux_loss" not in frame.columns:
        return []
    rows = frame[frame["aux_loss"].notna()]
    axis = swept_axis(frame)
    keep = ["mechanism", "mode", *([axis] if axis else []), *(c for c in ("n_experts", "top_k", "capacity_factor") if c in rows.columns), *MOE_FIELDS]
    return [{k: (fmt_value(r[k]) if not isinstance(r[k], float) or k not in MOE_FIELDS else f"{r[k]:.4g}") for k in keep if k in r}
            for r in rows.to_dict("records")]


def _layer_breakdown(records: list[dict[str, Any]], axis: str | None) -> dict[str, Any]:
    """Per-layer-kind FLOPs (analytic, with their share), forward time and decode state of each stack point."""
    stacks = [r for r in records if isinstance(r.get("layer_kinds"), dict) and r["layer_kinds"]]
    kinds = sorted({k for r in stacks for k in r["layer_kinds"]})
    rows = []
    for record in stacks:
        per_kind = record["layer_kinds"]
        total = sum(v.get("flops_analytic") or 0.0 for v in per_kind.values())
        if not total:
            continue
        cells = []
        for k in kinds:
            figures = per_kind.get(k, {})
            f = figures.get("flops_analytic")
            share = f"{human(f, 'flops')} ({100 * f / total:.0f}%)" if not is_missing(f) else "–"
            cells.append((share, human(figures.get("time_s"), "time"), human(figures.get("state_bytes"), "bytes")))
        rows.append({"mechanism": record["mechanism"], "mode": record["mode"], "size": fmt_value(record.get(axis)) if axis else "", "cells": cells})
    return {"kinds": kinds, "axis": axis or "", "rows": rows} if rows else {}


def _pattern_panels(patterns: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Heatmap divs of the measured pattern data (plotly only; the data was measured with the records)."""
    from effprof.render.patterns import pattern_figure

    panels = []
    for data in patterns or []:
        div = data["div"] if "div" in data else pattern_figure(data).to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False})
        panels.append({"name": data["name"], "n": data["n"], "density": data["density"], "div": div})
    return panels


def render(session: Session) -> str:
    """The self-contained HTML page of a session."""
    frame = session.frame
    fits = session.fits_frame
    figures = [{"mode": mode, "title": t, "div": _div(fig)} for mode, t, fig in metric_figures(frame, fits)]
    roofline = roofline_figure(frame)
    load = expert_load_figure(frame)
    columns, rows = _records_table(frame, session.axis)
    env = {}
    if len(frame):
        first = frame.iloc[0]
        env = {k: (human(first[k], unit_of(k)) + "/s" if k in UNIT_COLUMNS else fmt_value(first[k]))
               for k in ENV_COLUMNS if k in frame.columns and not is_missing(first[k])}
    families = sorted(set(frame["family"].dropna())) if "family" in frame.columns else []
    family_mechanisms = {f: sorted(set(frame.loc[frame["family"] == f, "mechanism"])) for f in families}
    template = _environment().get_template("report.html.j2")
    return template.render(
        title=session.title, command=session.command, environment=env, axis=session.axis,
        fits=session.fits, summary=session.summary, crossings=session.crossovers, complexity=session.complexity,
        figures=figures, roofline=_div(roofline) if roofline is not None else "", expert_load=_div(load) if load is not None else "",
        moe_rows=_moe_rows(frame), patterns=_pattern_panels(session.patterns), patterns_measured=session.patterns is not None,
        layers=_layer_breakdown(session.records, session.axis), families=families, family_mechanisms=family_mechanisms,
        baseline=session.baseline or [], has_baseline=session.baseline is not None, mark=NOISY_MARK, threshold=NOISE_THRESHOLD,
        columns=columns, rows=rows, plotlyjs=get_plotlyjs(), n_records=len(frame),
        n_failed=len(frame) - len(ok_rows(frame)),
    )


def write(session: Session, path: str | Path) -> str:
    """Write the session's HTML page to `path` (atomically); returns the path."""
    from effprof.records import atomic_writer

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    page = render(session)
    with atomic_writer(path) as f:
        f.write(page)
    return str(path)
