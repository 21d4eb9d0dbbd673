"""Terminal tables (rich): rows are mechanisms/variants, columns the swept sizes, best value in bold green.

Like torch.utils.benchmark's Compare: one table per mode and metric; with a
baseline series, each cell also shows its ratio to the baseline. Every table renders
a Session (effprof.analyse.session); a noisy timing (IQR/median > 10%) carries a †, and
crossovers or time verdicts resting on noisy points say "uncertain".
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from effprof.analyse.frames import add_labels, fmt_value, is_missing, noisy_mask, ok_rows, series_rows, swept_axis, variant_words
from effprof.analyse.outcome import claim_outcome
from effprof.analyse.session import Session
from effprof.render.escape import plain, terminal
from effprof.store.metrics import COMPARED, METRICS, NOISE_THRESHOLD, NOISY_MARK, ROOFLINE, human, is_busy, is_noisy, relative_spread

VERDICT_STYLE = {"pass": "bold green", "fail": "bold red", "inconclusive": "bold yellow", "no-claim": "dim"}
NOISE_NOTE = f"{NOISY_MARK} noisy: IQR/median > {100 * NOISE_THRESHOLD:.0f}%"


def comparison_tables(session: Session, baseline: str | None = None) -> list[Table]:
    """One table per mode × compared metric; `baseline` names a series to show ratios against."""
    frame = session.frame
    ok = ok_rows(frame)
    if ok.empty:
        return []
    axis = swept_axis(ok)
    ok = add_labels(ok, axis)
    ok = ok.assign(_noisy=noisy_mask(ok))
    tables = []
    for mode, group in ok.groupby("mode", sort=False):
        sizes = sorted(group[axis].dropna().unique()) if axis else [None]
        for metric in COMPARED:
            if metric.column not in group.columns or group[metric.column].isna().all():
                continue
            tables.append(_metric_table(group, mode, metric.column, axis, sizes, baseline))
    return tables


def _metric_table(group: pd.DataFrame, mode: str, metric: str, axis: str | None, sizes: list, baseline: str | None) -> Table:
    entry = next(m for m in COMPARED if m.column == metric)
    title = f"{entry.label} — {mode}" + (" — per generated token" if mode == "decode" and entry.per_call else "")
    cells: dict[str, dict[Any, float]] = {}
    noisy: dict[str, dict[Any, bool]] = {}
    for series, rows in group.groupby("series", sort=False):
        at = {size: (rows[rows[axis] == size] if axis else rows) for size in sizes}
        cells[series] = {size: r[metric].median() for size, r in at.items()}
        noisy[series] = {size: entry.timed and bool(r["_noisy"].any()) for size, r in at.items()}
    if any(any(v.values()) for v in noisy.values()):
        title += f" ({NOISE_NOTE})"
    table = Table(title=plain(title), title_justify="left")  # the mode comes from the records
    table.add_column("mechanism")
    for size in sizes:
        table.add_column(f"{axis}={fmt_value(size)}" if axis else "value", justify="right")
    best = {size: min((v[size] for v in cells.values() if _number(v[size])), default=None) for size in sizes}
    base = cells.get(baseline) if baseline else None
    for series, values in cells.items():
        row: list[Text] = [plain(series)]
        for size in sizes:
            value = values[size]
            text = human(value, metric) + (f" {NOISY_MARK}" if noisy[series][size] else "")
            if base is not None and _number(value) and _number(base[size]) and base[size] > 0 and series != baseline:
                text += f" ({value / base[size]:.2f}×)"
            best_here = _number(value) and best[size] is not None and value == best[size] and len(cells) > 1
            row.append(Text(text, style="bold green" if best_here else ""))
        table.add_row(*row)
    return table


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not is_missing(value)


def fits_table(fits: pd.DataFrame) -> Table:
    table = Table(title="scaling exponents — leading: exponent p of the dominant term of a·x^p + b·x^q (95% CI), which the "
                  "verdict judges; raw: log-log slope over the upper half of the sizes, as description", title_justify="left")
    numeric = ("leading [CI]", "claimed", "raw", "95% CI", "R²", "theory here")
    for column in ("mechanism", "variant", "mode", "metric", "axis", *numeric, "verdict"):
        table.add_column(column, justify="right" if column in numeric else "left")
    for row in fits.itertuples():
        verdict = plain(row.verdict, VERDICT_STYLE.get(row.verdict, ""))
        if claim_outcome(row._asdict()) == "uncertain":  # the one outcome rule (a NaN of a frame without the column is not)
            verdict = plain(f"{row.verdict} (uncertain: {row.noisy_points} noisy {NOISY_MARK})", "dim")
        reason = getattr(row, "verdict_reason", None)
        if isinstance(reason, str) and reason and row.verdict == "inconclusive":
            verdict.append(f" ({terminal(reason)})", style="yellow")
        ci = f"[{row.ci_low:.2f}, {row.ci_high:.2f}]" if _number(row.ci_low) else "–"
        claimed = "–" if not _number(row.claimed) else f"{row.claimed:g}"
        analytic = "–" if not _number(row.analytic_exponent) else f"{row.analytic_exponent:.2f}"
        leading = "–"
        if _number(row.leading_exponent):
            leading = f"{row.leading_exponent:.2f}" + (f" [{row.leading_ci_low:.2f}, {row.leading_ci_high:.2f}]" if _number(row.leading_ci_low) else "")
        raw = f"{row.exponent:.3f}" if _number(row.exponent) else "–"
        r2 = f"{row.r2:.3f}" if _number(row.r2) else "–"
        table.add_row(plain(row.mechanism), plain(variant_words(row.config)), plain(row.mode), plain(row.metric), plain(row.axis),
                      leading, claimed, raw, ci, r2, analytic, verdict)
    return table


def noise_lines(record: dict[str, Any]) -> list[str]:
    """Why a point's timing should not be quoted (noisy, spread unknown, busy machine); empty when it can be."""
    lines = []
    if is_noisy(record):
        lines.append(f"{NOISY_MARK} noisy timing: IQR/median {100 * relative_spread(record):.0f}% > {100 * NOISE_THRESHOLD:.0f}%")
    elif record.get("time_blocks") == 1:
        lines.append("spread unknown: one timed block (a longer --max-time times more)")
    if is_busy(record):
        lines.append(f"machine busy: 1-minute load {float(record['load_avg_1m']):.2f} on {record['cpu_count']} cores")
    return lines


def _projection_row(table: Table, record: dict[str, Any]) -> None:
    """--hardware: the point's roofline projection onto the named device, labelled as what it is."""
    if _number(record.get("projected_time_s")):
        table.add_row(plain(f"projected on {record.get('projected_hardware')}"),
                      plain(f"≥ {human(record['projected_time_s'], 'time')} ({record.get('projected_limit')}-bound; roofline projection, not measured)"))


def record_table(record: dict[str, Any]) -> Table:
    """One measured point, as `effprof profile` prints it."""
    table = Table(title=plain(f"{record['mechanism']} — {record['mode']} — {record['status']}"), title_justify="left", show_header=False)
    table.add_column("field")
    table.add_column("value", justify="right")
    for key in ("flops_analytic", "flops_counted", "flops_fvcore", "time_s", "time_iqr_s", "peak_bytes", "activation_bytes", "state_bytes",
                "params"):
        if key in record:
            table.add_row(key, human(record[key], key))
    if record.get("bytes_moved") is not None and record.get("measured_by") == "count":
        table.add_row("bytes_moved", human(record["bytes_moved"], "bytes"))
    if record.get("measured_by") == "count":  # nothing ran: no timing, so no note on the machine's load
        table.add_row("measured_by", "count (shapes only: nothing run or timed)")
        for key in ("assumptions", "fvcore_note", "uncounted_ops", "custom_ops", "error"):
            if record.get(key):
                table.add_row(key, plain(record[key]))
        _projection_row(table, record)  # counts project onto named hardware as well as runs do
        return table
    for line in noise_lines(record):
        table.add_row(Text("timing", style="bold yellow"), plain(line, "bold yellow"))
    if not is_missing(record.get("load_avg_1m")):
        table.add_row("load_avg_1m", plain(f"{float(record['load_avg_1m']):.2f} on {record.get('cpu_count')} cores"))
    if record.get("flops_counted") and record.get("flops_analytic"):
        table.add_row("counted / analytic", f"{record['flops_counted'] / record['flops_analytic']:.4f}")
    for metric in ROOFLINE:
        if _number(record.get(metric.column)):
            suffix = f" ({record['roofline_limit']}-bound)" if metric.name == "roofline_bound" and record.get("roofline_limit") else ""
            table.add_row(metric.label, plain(human(record[metric.column], metric.unit) + suffix))
    _projection_row(table, record)
    if record.get("impl_resolved") not in (None, record.get("impl")):  # impl=auto: the form that ran, and why
        table.add_row("impl", plain(f"{record.get('impl')} → {record['impl_resolved']}: {record.get('impl_reason', '')}"))
    for key in ("fvcore_note", "uncounted_ops", "custom_ops", "error"):
        if record.get(key):
            table.add_row(key, plain(record[key]))
    for warning in record.get("warnings") or ():  # torch settings the mechanism's code changed, restored
        table.add_row(Text("warning", style="bold yellow"), plain(warning, "bold yellow"))
    return table


# ---- the roofline: per point, its bound, intensity and achieved fraction ----------------------------------

LIMIT_LETTERS = {"compute": "C", "memory": "M", "overhead": "O"}
ROOFLINE_LEGEND = ("roofline, each point: bound (the model's lower bound on time: Σ over ops of max(FLOPs/peak, bytes/bandwidth) "
                   "+ dispatch overhead), what limits it (C compute, M memory, O overhead), achieved fraction of the bound "
                   "(bound / measured time), arithmetic intensity I (FLOP/byte)")


def roofline_table(session: Session) -> Table | None:
    """One row per series and mode, one column per size of the swept axis; each cell a point's roofline:
    `2.7 ms C 31% I62` (bound, limit, achieved fraction, intensity). With projected times (--hardware), a second line
    per cell: `→ 12 µs M` on that hardware (a roofline projection, not a measurement). None when no point has a bound."""
    frame = session.frame
    ok = ok_rows(frame)
    if ok.empty or not any(c in ok.columns and ok[c].notna().any() for c in ("roofline_bound_s", "projected_time_s")):
        return None
    axis = swept_axis(ok)
    ok = add_labels(ok, axis)
    hardware = sorted(set(ok["projected_hardware"].dropna())) if "projected_hardware" in ok.columns else []
    title = ROOFLINE_LEGEND + (f"; → projected on {', '.join(hardware)} (a roofline lower bound, not a measurement)" if hardware else "")
    table = Table(title=plain(title), title_justify="left")
    table.add_column("mechanism", overflow="fold")
    table.add_column("mode")
    sizes = sorted(ok[axis].dropna().unique()) if axis else [None]
    for size in sizes:
        table.add_column(f"{axis}={fmt_value(size)}" if axis else "value", justify="right")
    for (series, mode), rows in ok.groupby(["series", "mode"], sort=False):
        cells = []
        for size in sizes:
            at = rows[rows[axis] == size] if axis else rows
            cells.append(_roofline_cell(at.iloc[-1].to_dict()) if len(at) else Text("–", style="dim"))
        table.add_row(plain(series), plain(mode), *cells)
    return table


def _roofline_cell(record: dict[str, Any]) -> Text:
    parts = []
    if _number(record.get("roofline_bound_s")):
        parts.append(human(record["roofline_bound_s"], "time") + " " + LIMIT_LETTERS.get(record.get("roofline_limit"), "?"))
        if _number(record.get("roofline_fraction")):
            parts.append(human(record["roofline_fraction"], "fraction"))
    if _number(record.get("arithmetic_intensity")):
        parts.append(f"I{record['arithmetic_intensity']:.3g}")
    text = Text(" ".join(parts) or "–")
    if _number(record.get("projected_time_s")):
        text.append(f"\n→ {human(record['projected_time_s'], 'time')} {LIMIT_LETTERS.get(record.get('projected_limit'), '?')}", style="cyan")
    return text


def progress_bar(console, total: int):
    """A rich progress bar with ETA over `total` points, on `console` (stderr keeps --json output clean)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=False,
    )


def point_label(record: dict[str, Any]) -> str:
    """A point as the progress bar describes it: rich markup (the bar's column parses it), so the data in it
    is stripped of control characters and its brackets escaped."""
    keys = ("impl", "seq_len", "d_model")
    shown = {k: record[k] for k in keys if k in record}
    if record.get("impl_resolved") not in (None, record.get("impl")):  # impl=auto: the form that ran
        shown["impl"] = f"{record.get('impl')}→{record['impl_resolved']}"
    return escape(terminal(f"{record.get('mechanism')} {record.get('mode')} " + " ".join(f"{k}={v}" for k, v in shown.items())))


def crossovers_table(crossings: list[dict[str, Any]]) -> Table:
    uncertain = any(c.get("uncertain") for c in crossings)
    table = Table(title="crossovers: where one series becomes cheaper than the other (log-space interpolation"
                  + (f"; {NOISY_MARK} uncertain: rests on noisy timings)" if uncertain else ")"), title_justify="left")
    for column in ("mode", "metric", "series A", "series B", "crossover", "cheaper below", "cheaper above"):
        table.add_column(column, justify="right" if column == "crossover" else "left")
    for c in crossings:
        where = f"{c['axis']} ≈ {c['at']:.0f}" if c["at"] is not None else _equal_note(c) if c.get("equal") else c["note"]
        cell = plain(f"{where} {NOISY_MARK} uncertain", "dim") if c.get("uncertain") else plain(where)
        table.add_row(plain(c["mode"]), plain(c["metric"]), plain(c["a"]), plain(c["b"]), cell, plain(c["cheaper_below"] or ""),
                      plain(c["cheaper_above"] or ""))
    return table


def _equal_note(c: dict[str, Any]) -> str:
    """How an equal pair reads: no crossover, neither cheaper, and the tolerance that made them equal."""
    tolerance = c.get("tolerance")
    return "equal" + (f" (within {100 * tolerance:g}% at every size)" if _number(tolerance) else "")


def complexity_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="complexity: theory (from the specs) beside the measured exponent in seq_len", title_justify="left")
    for column in ("mechanism", "prefill", "meas.", "train", "meas.", "decode / token", "meas.", "state", "meas."):
        table.add_column(column, justify="right" if column == "meas." else "left")

    def cell(row: dict[str, Any], part: str) -> Text:
        value, verdict = row.get(f"{part}_exponent"), row.get(f"{part}_verdict", "")
        if not _number(value):
            return Text("–")
        return Text(f"{value:.2f}", style=VERDICT_STYLE.get(verdict, ""))

    for r in rows:
        table.add_row(plain(r["mechanism"]), plain(r["prefill"]), cell(r, "prefill"), plain(r["train"]), cell(r, "train"),
                      plain(r["decode"]), cell(r, "decode"), plain(r["state"]), cell(r, "state"))
    return table


def baseline_table(diff) -> Table:
    table = Table(title="against the baseline (time: beyond the runs' combined IQR, ≥ 5%; counts: beyond 0.5%)", title_justify="left")
    for column in ("mechanism", "mode", "point", "metric", "old", "new", "new/old", "change"):
        table.add_column(column, justify="right" if column in ("old", "new", "new/old") else "left")
    style = {"worse": "bold red", "better": "bold green", "same": "dim"}
    for r in diff.to_dict("records"):
        unit = r["metric"]  # a record column of the metrics table (analysis.baseline_diff)
        table.add_row(plain(r["mechanism"]), plain(r["mode"]), plain(r["point"]), plain(r["metric"]), human(r["old"], unit), human(r["new"], unit),
                      f"{r['ratio']:.3f}", Text(r["change"], style=style[r["change"]]) + (f" {NOISY_MARK} noisy" if r.get("noisy") else ""))
    return table


def session_tables(session: Session, baseline_series: str | None = None) -> list[Table]:
    """Everything `effprof compare` prints for a session, in order: the comparison tables, fits,
    crossovers, complexity, the baseline comparison."""
    tables = comparison_tables(session, baseline_series)
    if (roofline := roofline_table(session)) is not None:
        tables.append(roofline)
    if session.fits:
        tables.append(fits_table(session.fits_frame))
    if session.crossovers:
        tables.append(crossovers_table(session.crossovers))
    if session.complexity:
        tables.append(complexity_table(session.complexity))
    if session.baseline is not None:
        tables.append(baseline_table(session.baseline_frame))
    return tables


def summary_lines(session: Session) -> list[Text]:
    """The summary as lines of text (never parsed as markup): claims held, uncertain verdicts and crossovers,
    timing noise. `effprof compare --verbose` prints it under every table."""
    s = session.summary
    lines = [Text(f"{s['held']} of {s['claims']} claims hold", style="bold")]
    for f in s["failing"]:
        measured, claimed = f.get("leading_exponent"), f.get("claimed")
        measured_text = f"{measured:.2f}" if _number(measured) else "–"
        claimed_text = f"{claimed:g}" if _number(claimed) else "–"
        lines.append(Text("fail ", style="bold red") + plain(f"{f['mechanism']} {variant_words(f.get('config'))} {f['mode']} {f['metric']}: "
                                                           f"claimed {claimed_text}, measured {measured_text}"))
    if s["uncertain"]:
        lines.append(Text(f"{len(s['uncertain'])} time verdict(s) uncertain ({NOISE_NOTE}): not counted", style="dim"))
    for c in s["crossovers"]:
        lines.append(plain(f"{c['mode']} {c['metric']}: {c['cheaper_above']} is cheaper than {c['cheaper_below']} above {c['axis']} ≈ {c['at']:.0f}"))
    for c in s["uncertain_crossovers"]:
        lines.append(plain(f"{c['mode']} {c['metric']}: {c['a']} / {c['b']} near {c['axis']} ≈ {c['at']:.0f}: uncertain ({NOISY_MARK} noisy points)", "dim"))
    noise = s["noise"]
    if noise.get("noisy"):
        lines.append(Text(f"{noise['noisy']} of {noise['timed']} timed points are noisy ({NOISE_NOTE})", style="yellow"))
    return lines


# ---- the main job: what `effprof compare` prints by default -----------------------------------------------

# The metrics of the summary table, in its column order: cost in compute, in time, in memory, in decode state.
SUMMARY_METRICS = ("flops", "time", "peak_bytes", "state_bytes")
MAX_CROSSOVER_LINES = 10
MAX_REASON_LINES = 4


def summary_table(session: Session, baseline_series: str | None = None) -> Table:
    """One row per series and mode: the measured exponent of FLOPs, time, peak memory and decode state along
    the swept axis beside its claim and verdict, then each metric's value at the largest size.

    An exponent cell reads `2.00 (2) pass`: measured (the leading exponent where the two-term fit found one,
    else the log-log slope), claimed, verdict. Inconclusive verdicts are yellow, failures red, and a time
    exponent resting on noisy points reads `noisy †`, dim (not judged, not counted: no number to quote). With `baseline_series`,
    the values at the largest size carry their ratio to that series.
    """
    frame = ok_rows(session.frame)
    axis = session.axis or (swept_axis(frame) if not frame.empty else None)
    fits = session.fits_frame
    fits = fits[fits["axis"] == axis] if axis and not fits.empty else fits.iloc[0:0]
    keys = list(dict.fromkeys((f["mechanism"], f["variant"] or "", f["mode"]) for f in fits.to_dict("records")))
    configs = {(f["mechanism"], f["variant"] or ""): f.get("config") or {} for f in fits.to_dict("records")}
    for key in dict.fromkeys(zip(frame.get("mechanism", []), frame.get("mode", []), strict=False)):
        if not any(k[0] == key[0] and k[2] == key[1] for k in keys):
            keys.append((key[0], "", key[1]))
    largest = _largest(frame, axis)
    title = ("summary: exponent in " + (terminal(axis) if axis else "the swept size") + ": measured (claimed) verdict; "
             "then the values at the largest size; decode per generated token")
    table = Table(title=title, title_justify="left")
    labels = [mechanism + (f" [{variant_words(configs.get((mechanism, variant)))}]" if variant else "") for mechanism, variant, _ in keys]
    table.add_column("mechanism", overflow="fold", min_width=min(40, max(map(len, labels), default=9)))  # names stay whole
    table.add_column("mode")
    for name in SUMMARY_METRICS:
        table.add_column(METRICS[name].short, justify="right")
    at = f" @{fmt_value(largest)}" if largest is not None else ""
    for name in SUMMARY_METRICS:
        table.add_column(METRICS[name].short + at, justify="right")
    by_key = {(f["mechanism"], f["variant"] or "", f["mode"], f["metric"]): f for f in fits.to_dict("records")}
    base_rows = _series_rows(frame, baseline_series, {}, None, axis) if baseline_series else None
    for (mechanism, variant, mode), label in zip(keys, labels, strict=False):
        label = plain(label)
        exponents = [_exponent_cell(by_key.get((mechanism, variant, mode, name))) for name in SUMMARY_METRICS]
        rows = _series_rows(frame, mechanism, configs.get((mechanism, variant), {}), mode, axis)
        base = None
        if base_rows is not None and mechanism != baseline_series:
            base = base_rows[base_rows["mode"] == mode] if "mode" in base_rows else None
        values = [_value_cell(rows, name, axis, largest, base) for name in SUMMARY_METRICS]
        table.add_row(label, plain(mode), *exponents, *values)
    return table


def _largest(frame: pd.DataFrame, axis: str | None):
    if not axis or axis not in frame.columns or frame[axis].dropna().empty:
        return None
    return frame[axis].dropna().max()


def _series_rows(frame: pd.DataFrame, mechanism: str, config: dict[str, Any] | None, mode: str | None, axis: str | None) -> pd.DataFrame:
    """The ok records of one series (mechanism, its structured key `config` as fit rows carry it; `mode` or every mode)."""
    if frame.empty:
        return frame
    rows = frame[frame["mechanism"] == mechanism]
    if mode is not None:
        rows = rows[rows["mode"] == mode]
    return series_rows(rows, config)


def _exponent_cell(fit: dict[str, Any] | None) -> Text:
    if fit is None:
        return Text("–", style="dim")
    value = _shown_exponent(fit)
    if not _number(value) and not _number(fit.get("claimed")):
        return Text("–", style="dim")
    verdict = claim_outcome(fit)  # the one outcome rule: a damaged verdict reads inconclusive, never as it was written
    # a time exponent over noisy points, claimed (outcome uncertain) or not, is no figure to quote: "noisy", never −2.59
    if verdict == "uncertain" or fit.get("uncertain") in (True,):
        claimed = f" ({fit['claimed']:g})" if _number(fit.get("claimed")) else ""
        return Text(f"noisy{claimed} {NOISY_MARK}", style="dim")
    text = f"{value if abs(value) >= 0.005 else 0.0:.2f}" if _number(value) else "–"  # never "-0.00"
    if _number(fit.get("claimed")):
        text += f" ({fit['claimed']:g}) " + ("FAIL" if verdict == "fail" else verdict)
    return Text(text, style=VERDICT_STYLE.get(verdict, "") if verdict != "no-claim" else "")


def _shown_exponent(fit: dict[str, Any]) -> float | None:
    """With a claim, the exponent the verdict judges: the dominant term's (effprof.analyse.fit's one estimator; none
    when the fit could not identify it); without one, the log-log slope, as description."""
    if _number(fit.get("claimed")):
        return fit.get("leading_exponent") if _number(fit.get("leading_exponent")) else None
    return fit.get("exponent")


def _value_cell(rows: pd.DataFrame, name: str, axis: str | None, largest, base: pd.DataFrame | None) -> Text:
    column = METRICS[name].column
    if rows.empty or column not in rows.columns:
        return Text("–", style="dim")
    at = rows[rows[axis] == largest] if axis and axis in rows.columns and largest is not None else rows
    value = at[column].median() if not at.empty else None
    if not _number(value):
        return Text("–", style="dim")
    text = human(value, METRICS[name].column)
    noisy = METRICS[name].timed and bool(noisy_mask(at).any())
    if noisy:
        text += f" {NOISY_MARK}"
    if base is not None and not base.empty and column in base.columns:
        b = base[base[axis] == largest] if axis and axis in base.columns and largest is not None else base
        reference = b[column].median() if not b.empty else None
        if _number(reference) and reference > 0:
            text += f" ({value / reference:.3g}×)"
    return Text(text, style="dim" if noisy else "")


def crossover_lines(session: Session, limit: int = MAX_CROSSOVER_LINES) -> list[Text]:
    """The crossovers that exist — in range and resting on no noisy point — one line per mode, metric and
    series that others overtake: `forward FLOPs: cheaper than softmax_attention above seq_len ≈ linear_attention
    256, sliding_window 369`. Uncertain ones are counted on one dim line; "none in range" pairs are left out."""
    found = [c for c in session.crossovers if c.get("at") is not None and not c.get("uncertain")]
    uncertain = [c for c in session.crossovers if c.get("at") is not None and c.get("uncertain")]
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for c in found:
        groups.setdefault((c["mode"], c["metric"], c["axis"], c["cheaper_below"], c.get("measured_by") == "count"), []).append(c)
    lines = []
    for (mode, metric, axis, below, counted), crossings in groups.items():
        crossings = sorted(crossings, key=lambda c: c["at"])
        overtakers = ", ".join(f"{c['cheaper_above']} {c['at']:.0f}" for c in crossings)
        label = _short(metric)
        how = " (counted, not timed)" if counted else ""
        lines.append(plain(f"  {mode} {label}{how}: cheaper than {below} above {axis} ≈ {overtakers}"))
    shown = lines[:limit]
    if len(lines) > limit:
        shown.append(Text(f"  … {len(lines) - limit} more lines of crossovers in the report", style="dim"))
    head = Text(f"{len(found)} crossovers in range" + (":" if found else " (every other pair keeps its order over the measured sizes)"),
                style="bold")
    result = [head, *shown]
    equal = [c for c in session.crossovers if c.get("equal")]
    if equal:
        pairs = "; ".join(f"{c['mode']} {_short(c['metric'])}: {c['a']} = {c['b']}" for c in equal[:3])
        more = f"; … {len(equal) - 3} more" if len(equal) > 3 else ""
        result.append(plain(f"  {len(equal)} pair(s) equal at every size (no crossover): {pairs}{more}", "dim"))
    if uncertain:
        result.append(Text(f"  {len(uncertain)} more rest on noisy timings ({NOISY_MARK} uncertain): not stated as findings", style="dim"))
    return result


def _short(name: str) -> str:
    """A metric's short label (metrics.METRICS); a name outside the table as given."""
    return METRICS[name].short if name in METRICS else name


def verdict_lines(session: Session) -> list[Text]:
    """One line of claim counts (held, failed, inconclusive, uncertain), then why a few were inconclusive."""
    summary = session.summary
    held, certain, failed = summary["held"], summary["claims"], len(summary["failing"])
    inconclusive, uncertain = summary["inconclusive"], summary["uncertain"]
    line = Text(f"{held} of {certain} claims hold", style="bold green" if held == certain else "bold")
    if failed:
        line.append(f"; {failed} FAIL", style="bold red")
    if inconclusive:
        line.append(f"; {len(inconclusive)} inconclusive", style="bold yellow")
    if uncertain:
        line.append(f"; {len(uncertain)} time verdict(s) uncertain ({NOISY_MARK} noisy points): not counted", style="dim")
    lines = [line]
    reasons = [f for f in inconclusive if isinstance(f.get("verdict_reason"), str) and f["verdict_reason"]]
    for f in reasons[:MAX_REASON_LINES]:
        where = f"{f['mechanism']}" + (f" [{variant_words(f.get('config'))}]" if f.get("variant") else "") + f" {f['mode']} {f['metric']}"
        lines.append(plain(f"  inconclusive: {where}: {f['verdict_reason']}", "yellow"))
    if len(reasons) > MAX_REASON_LINES:
        lines.append(Text(f"  … {len(reasons) - MAX_REASON_LINES} more inconclusive verdicts explained in the report", style="dim"))
    return lines


def baseline_lines(session: Session, limit: int = 5) -> list[Text]:
    """Against a baseline results file: how many point × metric comparisons changed beyond noise, and the worst."""
    if session.baseline is None:
        return []
    diff = session.baseline_frame
    if diff.empty:
        return [Text("against the baseline: no point in common", style="yellow")]
    counts = diff["change"].value_counts()
    line = Text(f"against the baseline: {counts.get('worse', 0)} worse, {counts.get('better', 0)} better, "
                f"{counts.get('same', 0)} within noise", style="bold")
    worse = diff[diff["change"] == "worse"].sort_values("ratio", ascending=False)
    lines = [line]
    for r in worse.head(limit).to_dict("records"):
        lines.append(plain(f"  worse: {r['mechanism']} {r['mode']} {r['point']} {r['metric']} ×{r['ratio']:.2f}", "red"))
    return lines


def summary_screen(session: Session, report: str, baseline_series: str | None = None) -> list[Table | Text]:
    """What `effprof compare` prints at its defaults, short enough for one screen: the summary table, the
    claim counts, the crossovers that exist, the baseline verdict, and where the rest is."""
    parts: list[Table | Text] = [summary_table(session, baseline_series)]
    noise = session.noise or {}
    legend = ("measured: where claimed, the dominant term's exponent (what the verdict judges), else the log-log slope; "
              "verdict: claim vs its 95% CI ± tol")
    parts.append(Text(legend, style="dim"))
    if noise.get("noisy"):
        parts.append(Text(f"{NOISY_MARK} noisy timing: {noise['noisy']} of {noise['timed']} timed points have IQR/median > "
                          f"{100 * NOISE_THRESHOLD:.0f}%; time verdicts and crossovers resting on them are uncertain", style="dim"))
    if (roofline := roofline_table(session)) is not None:
        parts.append(roofline)
    parts += verdict_lines(session)
    parts += crossover_lines(session)
    parts += baseline_lines(session)
    parts.append(plain(f"details in the report: {report}  (every table: --verbose)"))
    return parts


def render(session: Session, options) -> list[Table | Text]:
    """What `effprof compare` prints (effprof.render.render's console format): the one-screen summary
    (`summary_screen`), or with options.verbose every table and the summary lines."""
    if options.verbose:
        return [*session_tables(session, options.baseline_series), *summary_lines(session)]
    return summary_screen(session, options.report, options.baseline_series)
