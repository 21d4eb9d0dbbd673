"""The HTML report of a Session: what a reader wants first, then the figures, then every detail.

Order of the page:
  1. Summary — the claim verdicts (pass, fail, inconclusive with the reason; verdicts resting on
     noisy timings marked uncertain), the crossovers that exist (in range, not uncertain), and the
     complexity table; one line under the title says where it was measured (CPU model, cores,
     machine load, torch and effprof versions).
  2. Figures — one log-log plot per mode × metric (measured points, analytic curve, fitted line),
     the roofline, "Where the cost goes" (per-module cost share across the sweep and per-module
     fitted exponents, for records with a `breakdown`), and the per-family panels.
  3. Details — every fit, every crossover, the baseline comparison, the records table (filterable,
     sortable, paged), and the environment with the exact command.

Every table sorts by a click on its header. Repeated measurements of one point are shown once,
as their median with a count (effprof.analyse.points), so a results file of 100,000 records draws a
readable page; the records table is embedded as compact JSON and drawn a page at a time.

plotly.js is inlined once by default, so the file opens offline; `plotlyjs="cdn"` loads it from
plotly's CDN (pinned version, integrity-checked), `"directory"` from a plotly.min.js written once
beside the report (as plotly's own include_plotlyjs="directory"). Rendered from a jinja2 template
with autoescaping; the embedded JSON escapes <, > and &, so nothing a user typed reaches the page raw.
It renders a Session (effprof.analyse.session) and computes nothing the Session carries: the fits, the per-module
fits and the points shown once are all the Session's.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from effprof.analyse.frames import add_labels, fmt_value, is_missing, ok_rows, swept_axis, variant_words
from effprof.analyse.outcome import claim_outcome, outcome_reason, tally
from effprof.analyse.points import COUNT
from effprof.analyse.session import Session
from effprof.render.escape import plotly_strings
from effprof.render.figures import expert_load_figure, metric_figures
from effprof.render.roofline import largest_size_rows, roofline_figures
from effprof.store.metrics import METRICS, NOISE_THRESHOLD, NOISY_MARK, human, is_busy, is_noisy, ladder_data, unit_of

PLOTLYJS = ("inline", "cdn", "directory")  # how the page loads plotly.js (--plotlyjs)
BUNDLE = "plotly.min.js"  # the file `directory` writes beside the report
PAGE_ROWS = 100  # rows of the records table drawn at a time
MAX_FIGURE_SERIES = 24  # series drawn per figure; beyond, a figure is a blur (the tables keep them all)

RECORD_COLUMNS = ["mechanism", "family", "mode", "status", "flops_analytic", "flops_counted", "flops_fvcore", "time_s", "time_iqr_s",
                  "peak_bytes", "activation_bytes", "state_bytes", "params", "fraction_of_peak", "arithmetic_intensity", "roofline_bound_s",
                  "roofline_limit", "roofline_fraction", "projected_time_s", "load_avg_1m", "error"]
UNIT_COLUMNS = {"time_s", "time_iqr_s", "peak_bytes", "activation_bytes", "state_bytes", "flops_analytic", "flops_counted", "flops_fvcore",
                "params", "arithmetic_intensity", "roofline_bound_s", "roofline_fraction", "projected_time_s"}
MOE_FIELDS = ("aux_loss", "z_loss", "dropped_fraction", "load_cv")
OUTCOME_ORDER = {"fail": 0, "inconclusive": 1, "uncertain": 2, "pass": 3}  # how the notable verdicts are listed



def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("effprof", "render/templates"),
                             autoescape=jinja2.select_autoescape(default=True, default_for_string=True))
    env.filters["num"] = _num
    env.filters["human"] = human
    env.filters["words"] = variant_words  # impl=chunked -> chunked
    env.globals["metrics"] = METRICS  # the template names a metric as the table does: {{ metrics.time.short }}
    return env


def _num(value: Any, digits: int = 2) -> str:
    if is_missing(value) or not isinstance(value, (int, float)):
        return "–"
    return f"{float(value):.{digits}f}"


def _div(fig: go.Figure) -> str:
    """A figure as a <div> and its script: drawn from data now (never stored markup); plotly's JSON escapes < > &
    and the names and title, which plotly.js reads as markup, pass through escape.plotly_strings."""
    return plotly_strings(fig).to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False, "responsive": True})


def plotlyjs_tag(mode: str) -> str:
    """The <script> that loads plotly.js: inlined, from plotly's CDN (version-pinned, integrity-checked), or from BUNDLE beside the page."""
    if mode == "inline":
        return f"<script>{get_plotlyjs()}</script>"
    if mode == "cdn":
        from plotly.io._html import _generate_sri_hash
        from plotly.io._utils import plotly_cdn_url

        return f'<script charset="utf-8" src="{plotly_cdn_url()}" integrity="{_generate_sri_hash(get_plotlyjs())}" crossorigin="anonymous"></script>'
    if mode == "directory":
        return f'<script charset="utf-8" src="{BUNDLE}"></script>'
    raise ValueError(f"plotlyjs {mode!r} is not one of {', '.join(PLOTLYJS)}")


def _json_script(data: Any) -> str:
    """JSON safe inside <script type="application/json">: no '<', '>' or '&' that could close or open a tag."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


# ---- the summary ------------------------------------------------------------------------


def _verdicts(fits: list[dict[str, Any]]) -> dict[str, Any]:
    """The claimed fits at a glance: a matrix (one row per series, one column per claimed mode × metric, each cell the
    measured exponent against the claim, coloured by its verdict), the verdicts that are not a plain pass (fail,
    inconclusive, uncertain) listed with their reasons, and the counts (uncertain ones apart)."""
    rows = []
    for f in fits:
        outcome = claim_outcome(f)
        if outcome == "no-claim":
            continue
        rows.append({**f, "outcome": outcome, "reason": outcome_reason(f, NOISY_MARK), "order": OUTCOME_ORDER[outcome],
                     "claim": f"{f['metric']} ∝ {f['axis']}^{fmt_value(f['claimed'])}",
                     # what the verdict judged: the dominant term's exponent and its interval (effprof.analyse.fit), not the raw slope
                     "judged": f.get("leading_exponent"), "judged_low": f.get("leading_ci_low"), "judged_high": f.get("leading_ci_high")})
    columns = list(dict.fromkeys((f["mode"], f["metric"], f["axis"]) for f in rows))
    matrix: dict[tuple[str, str], dict[tuple[str, str, str], dict[str, Any]]] = {}
    configs: dict[tuple[str, str], dict[str, Any]] = {}
    for f in rows:
        matrix.setdefault((f["mechanism"], f.get("variant") or ""), {}).setdefault((f["mode"], f["metric"], f["axis"]), f)
        configs[(f["mechanism"], f.get("variant") or "")] = f.get("config") or {}
    outcomes = tally(fits)
    counts = {v: len(outcomes[v]) for v in ("fail", "inconclusive", "pass")}
    return {"columns": [{"mode": m, "metric": metric, "axis": axis} for m, metric, axis in columns],
            "matrix": [{"mechanism": mechanism, "variant": variant, "config": configs[(mechanism, variant)], "cells": [cells.get(c) for c in columns]}
                       for (mechanism, variant), cells in matrix.items()],
            "notable": sorted((f for f in rows if f["outcome"] != "pass"), key=lambda f: f["order"]),
            "counts": counts, "claims": sum(counts.values()), "uncertain": len(outcomes["uncertain"])}


def _found_crossovers(crossovers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The crossovers that exist: in the measured range and not resting on noisy timings."""
    return [c for c in crossovers if c.get("at") is not None and not c.get("uncertain")]


def _machine(frame: pd.DataFrame) -> dict[str, str]:
    """Where the records were measured, in words: CPU model, cores, load during the run, GPU, versions, hosts, dates."""

    def distinct(column: str) -> list[str]:
        return [fmt_value(v) for v in dict.fromkeys(frame[column].dropna())] if column in frame.columns else []

    out: dict[str, str] = {}
    on_gpu = frame["device"].astype(str).str.startswith("cuda") if "device" in frame.columns else pd.Series(False, index=frame.index)
    cpus = distinct("cpu_model")
    if not cpus and "device_name" in frame.columns:  # records before the CPU model was recorded name the architecture only
        cpus = [fmt_value(v) for v in dict.fromkeys(frame.loc[~on_gpu, "device_name"].dropna())]
    if cpus:
        out["CPU"] = ", ".join(cpus)
    if cores := distinct("cpu_count"):
        out["cores"] = ", ".join(cores)
    if "load_avg_1m" in frame.columns and len(loads := [float(v) for v in frame["load_avg_1m"].dropna()]):
        out["load (1-minute average)"] = f"min {min(loads):.2f}, median {statistics.median(loads):.2f}, max {max(loads):.2f}"
    if "device_name" in frame.columns and (gpus := [fmt_value(v) for v in dict.fromkeys(frame.loc[on_gpu, "device_name"].dropna())]):
        out["GPU"] = ", ".join(gpus)
    for column, name in (("threads", "torch threads"), ("torch", "torch"), ("effprof", "effprof"), ("git_sha", "effprof commit"),
                         ("hostname", "host")):
        if values := distinct(column):
            out[name + ("s" if len(values) > 1 and column == "hostname" else "")] = ", ".join(values)
    if "timestamp" in frame.columns and len(stamps := sorted(str(v) for v in frame["timestamp"].dropna())):
        out["measured"] = stamps[0] if stamps[0] == stamps[-1] else f"{stamps[0]} to {stamps[-1]}"
    for column, name, unit in (("peak_flops_per_s", "measured matmul peak (FLOP/s)", "flops"),
                               ("peak_bytes_per_s", "measured memory bandwidth beyond the caches (STREAM triad)", "bytes"),
                               ("bandwidth_in_cache_bytes_per_s", "measured memory bandwidth in cache (STREAM triad)", "bytes"),
                               ("dispatch_overhead_s", "measured overhead per dispatched op", "time")):
        if column in frame.columns and frame[column].notna().any():
            per_dtype = frame.groupby("dtype")[column].median() if "dtype" in frame.columns else pd.Series({"": frame[column].median()})
            out[name] = ", ".join(f"{human(float(v), unit)}{'/s' if unit != 'time' else ''}" + (f" ({dtype})" if dtype else "")
                                  for dtype, v in per_dtype.dropna().items())
    return out


# ---- figures ----------------------------------------------------------------------------


def _figure_points(points: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The points drawn in figures — those of the first MAX_FIGURE_SERIES series — and, when that leaves some out,
    what was measured in all ("30 series", "25000 mechanisms"). Series are labelled only among the first
    MAX_FIGURE_SERIES mechanisms, so a file of thousands of mechanisms is not labelled row by row."""
    ok = ok_rows(points)
    if ok.empty:
        return points, ""
    mechanisms = list(dict.fromkeys(ok["mechanism"]))
    first = ok[ok["mechanism"].isin(mechanisms[:MAX_FIGURE_SERIES])]
    labelled = add_labels(first, swept_axis(ok))
    series = list(dict.fromkeys(labelled["series"]))
    if len(mechanisms) <= MAX_FIGURE_SERIES and len(series) <= MAX_FIGURE_SERIES:
        return points, ""
    measured = f"{len(mechanisms)} mechanisms" if len(mechanisms) > MAX_FIGURE_SERIES else f"{len(series)} series"
    return points.loc[labelled.index[labelled["series"].isin(series[:MAX_FIGURE_SERIES])]], measured


def _cost_breakdown(session: Session, frame: pd.DataFrame) -> dict[str, Any]:
    """'Where the cost goes': the stacked share figures (FLOPs, time) and the session's per-module fits."""
    if "breakdown" not in frame.columns:
        return {}
    measured = frame[frame["breakdown"].map(lambda b: isinstance(b, dict) and len(b) > 0)]
    if measured.empty:
        return {}
    from effprof.render.breakdown import share_figures

    figures = [{"mechanism": m, "metric": metric, "div": _div(fig)} for metric in ("flops", "time_s") for m, fig in share_figures(measured, metric)]
    return {"figures": figures, "fits": session.module_fits, "mechanisms": len(set(measured["mechanism"]))}


# ---- tables -----------------------------------------------------------------------------


def _column_kind(column: str) -> str:
    if column in UNIT_COLUMNS:
        return unit_of(column)  # a key of metrics.LADDERS, which the page's script writes the cell with
    if column == "fraction_of_peak":
        return "fraction"
    if column == "load_avg_1m":
        return "load"
    return "text"


def _compact(value: Any) -> int | float | None:
    """A number as short as the table needs: integers exactly, others to 5 significant digits (the table shows 3)."""
    if is_missing(value):
        return None
    number = float(value)
    return int(number) if number.is_integer() and abs(number) < 1e15 else float(f"{number:.5g}")


def records_data(points: pd.DataFrame, axis: str | None) -> dict[str, Any]:
    """The records table as compact JSON for the page's script: columns (name, kind, and for text columns the
    distinct values, which rows index), then one array per row with a last element of flags (1: noisy timing,
    2: busy machine). Columns empty in every row are left out."""
    columns = [c for c in RECORD_COLUMNS if c in points.columns and points[c].notna().any() and not (points[c].astype(str) == "").all()]
    keys = ("impl", "impl_resolved", "impl_reason", axis, "d_model", "batch")  # impl_*: the form impl=auto ran, and why
    config = [c for c in keys if c and c in points.columns and c not in columns and points[c].notna().any()]
    columns[3:3] = config
    if COUNT in points.columns and (points[COUNT] > 1).any():
        columns.insert(3 + len(config), COUNT)
    kinds = {c: ("number" if c in config and pd.api.types.is_numeric_dtype(points[c]) else "number" if c == COUNT else _column_kind(c))
             for c in columns}
    values: dict[str, dict[str, int]] = {c: {} for c in columns if kinds[c] == "text"}
    judged = [c for c in ("time_s", "time_iqr_s", "load_avg_1m", "cpu_count") if c in points.columns and c not in columns]
    rows = []
    for record in points[columns + judged].to_dict("records"):
        row: list[Any] = []
        for c in columns:
            value = record.get(c)
            if kinds[c] == "text":
                row.append(None if is_missing(value) or value == "" else values[c].setdefault(fmt_value(value), len(values[c])))
            else:
                row.append(_compact(value))
        flags = 0
        if is_noisy(record):
            flags |= 1
        if is_busy(record):
            flags |= 2
        row.append(flags)
        rows.append(row)
    return {"columns": [{"name": c, "kind": kinds[c], **({"values": list(values[c])} if c in values else {})} for c in columns],
            "rows": rows, "units": ladder_data(), "page": PAGE_ROWS, "mark": NOISY_MARK,
            "noisy_note": f"noisy: IQR/median > {100 * NOISE_THRESHOLD:.0f}%", "busy_note": "busy: load above the core count"}


def _moe_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    if "aux_loss" not in frame.columns:
        return []
    rows = frame[frame["aux_loss"].notna()]
    axis = swept_axis(frame)
    keep = ["mechanism", "mode", *([axis] if axis else []), *(c for c in ("n_experts", "top_k", "capacity_factor") if c in rows.columns), *MOE_FIELDS]
    return [{k: (fmt_value(r[k]) if not isinstance(r[k], float) or k not in MOE_FIELDS else f"{r[k]:.4g}") for k in keep if k in r}
            for r in rows.to_dict("records")]


def _layer_breakdown(frame: pd.DataFrame, axis: str | None) -> dict[str, Any]:
    """Per-layer-kind FLOPs (analytic, with their share), forward time and decode state of each stack point."""
    if "layer_kinds" not in frame.columns:
        return {}
    rows = frame[frame["layer_kinds"].map(lambda kinds: isinstance(kinds, dict) and len(kinds) > 0)]
    stacks = [{k: v for k, v in r.items() if not is_missing(v)} for r in rows.to_dict("records")]
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
    """Heatmaps drawn now from the measured pattern data (coordinates): a session carries data, never markup,
    and anything else it holds (a stored `div`) is ignored."""
    from effprof.render.patterns import pattern_figure

    return [{"name": data["name"], "n": data["n"], "density": data["density"], "div": _div(pattern_figure(data))} for data in patterns or []]


# ---- the page ---------------------------------------------------------------------------


def render(session: Session, plotlyjs: str = "inline") -> str:
    """The HTML page of a session; `plotlyjs` is how it loads plotly.js (PLOTLYJS: inline, cdn, directory)."""
    script = plotlyjs_tag(plotlyjs)
    frame = session.frame
    fits = session.fits_frame
    points = session.points
    drawn, left_out = _figure_points(points)
    figures = [{"mode": mode, "title": t, "div": _div(fig)} for mode, t, fig in metric_figures(drawn, fits)]
    rooflines = roofline_figures(drawn)
    load = expert_load_figure(drawn)
    families = sorted(set(frame["family"].dropna())) if "family" in frame.columns else []
    family_mechanisms = {f: sorted(set(frame.loc[frame["family"] == f, "mechanism"])) for f in families}
    crossings = session.crossovers
    template = _environment().get_template("report.html.j2")
    return template.render(
        title=session.title, command=session.command, machine=_machine(frame), axis=session.axis,
        fits=session.fits, verdicts=_verdicts(session.fits), noise=session.noise, found=_found_crossovers(crossings),
        uncertain_crossovers=[c for c in crossings if c.get("at") is not None and c.get("uncertain")],
        crossings=[c for c in crossings if c.get("at") is not None], unfound=[c for c in crossings if c.get("at") is None],
        equal_pairs=[c for c in crossings if c.get("equal")],
        complexity=session.complexity,
        figures=figures, left_out=left_out, max_series=MAX_FIGURE_SERIES,
        rooflines=[_div(fig) for fig in rooflines], roofline_rows=largest_size_rows(frame), projection=session.hardware,
        expert_load=_div(load) if load is not None else "",
        cost=_cost_breakdown(session, frame),
        moe_rows=_moe_rows(points), patterns=_pattern_panels(session.patterns), patterns_measured=session.patterns is not None,
        layers=_layer_breakdown(frame, session.axis), families=families, family_mechanisms=family_mechanisms,
        baseline=session.baseline or [], has_baseline=session.baseline is not None, mark=NOISY_MARK, threshold=NOISE_THRESHOLD,
        records_json=_json_script(records_data(points, session.axis)), plotlyjs=script, n_records=len(frame), n_points=len(points),
        n_failed=len(frame) - len(ok_rows(frame)),
    )


def write(session: Session, path: str | Path, plotlyjs: str = "inline") -> str:
    """Write the session's HTML page to `path` (atomically); returns the path. With plotlyjs="directory",
    plotly.min.js is written beside it unless the same bundle is already there (one copy for every report of the folder)."""
    from effprof.store.records import atomic_writer

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    page = render(session, plotlyjs)
    if plotlyjs == "directory":
        bundle, code = path.parent / BUNDLE, get_plotlyjs()
        if not bundle.is_file() or bundle.read_text(encoding="utf-8", errors="replace") != code:
            with atomic_writer(bundle) as f:
                f.write(code)
    with atomic_writer(path) as f:
        f.write(page)
    return str(path)

