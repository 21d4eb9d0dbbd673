"""Terminal tables (rich): rows are mechanisms/variants, columns the swept sizes, best value in bold green.

Like torch.utils.benchmark's Compare: one table per mode and metric; with a
baseline series, each cell also shows its ratio to the baseline. Every table renders
a Session (effprof.analysis); a noisy timing (IQR/median > 10%) carries a †, and
crossovers or time verdicts resting on noisy points say "uncertain".
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from rich.markup import escape
from rich.table import Table

from effprof.analysis import Session
from effprof.frames import add_labels, fmt_value, is_missing, noisy_mask, ok_rows, swept_axis
from effprof.metrics import COMPARED, NOISE_THRESHOLD, NOISY_MARK, human, is_noisy, relative_spread

VERDICT_STYLE = {"pass": "bold green", "fail": "bold red", "inconclusive": "bold yellow", "no-claim": "dim"}
NOISE_NOTE = f"{NOISY_MARK} noisy: IQR/median > {100 * NOISE_THRESHOLD:.0f}%"


def comparison_tables(data: Session | pd.DataFrame, baseline: str | None = None) -> list[Table]:
    """One table per mode × compared metric; `baseline` names a series to show ratios against."""
    frame = data.frame if isinstance(data, Session) else data
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
    title = f"{entry.label} — {mode}" + (" — per generated token" if mode == "decode" and entry.name in ("flops", "time") else "")
    cells: dict[str, dict[Any, float]] = {}
    noisy: dict[str, dict[Any, bool]] = {}
    for series, rows in group.groupby("series", sort=False):
        at = {size: (rows[rows[axis] == size] if axis else rows) for size in sizes}
        cells[series] = {size: r[metric].median() for size, r in at.items()}
        noisy[series] = {size: entry.timed and bool(r["_noisy"].any()) for size, r in at.items()}
    if any(any(v.values()) for v in noisy.values()):
        title += f" ({NOISE_NOTE})"
    table = Table(title=title, title_justify="left")
    table.add_column("mechanism")
    for size in sizes:
        table.add_column(f"{axis}={fmt_value(size)}" if axis else "value", justify="right")
    best = {size: min((v[size] for v in cells.values() if _number(v[size])), default=None) for size in sizes}
    base = cells.get(baseline) if baseline else None
    for series, values in cells.items():
        row = [escape(series)]
        for size in sizes:
            value = values[size]
            text = human(value, metric) + (f" {NOISY_MARK}" if noisy[series][size] else "")
            if base is not None and _number(value) and _number(base[size]) and base[size] > 0 and series != baseline:
                text += f" ({value / base[size]:.2f}×)"
            if _number(value) and best[size] is not None and value == best[size] and len(cells) > 1:
                text = f"[bold green]{text}[/]"
            row.append(text)
        table.add_row(*row)
    return table


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not is_missing(value)


def fits_table(fits: pd.DataFrame) -> Table:
    table = Table(title="scaling exponents: log-log slope over the upper half of the sizes (95% bootstrap CI); "
                  "leading: exponent p of the dominant term of a·x^p + b·x^q, q = 1 or 0", title_justify="left")
    numeric = ("exponent", "95% CI", "R²", "leading [CI]", "theory here", "claimed")
    for column in ("mechanism", "variant", "mode", "metric", "axis", *numeric, "verdict"):
        table.add_column(column, justify="right" if column in numeric else "left")
    for row in fits.itertuples():
        verdict = f"[{VERDICT_STYLE.get(row.verdict, '')}]{row.verdict}[/]"
        if getattr(row, "uncertain", False) in (True,):  # True or numpy's True; never a NaN of a frame without the column
            verdict = f"[dim]{row.verdict} (uncertain: {row.noisy_points} noisy {NOISY_MARK})[/]"
        ci = f"[{row.ci_low:.2f}, {row.ci_high:.2f}]" if _number(row.ci_low) else "–"
        claimed = "–" if not _number(row.claimed) else f"{row.claimed:g}"
        analytic = "–" if not _number(row.analytic_exponent) else f"{row.analytic_exponent:.2f}"
        leading = "–"
        if _number(row.leading_exponent):
            leading = f"{row.leading_exponent:.2f}" + (f" [{row.leading_ci_low:.2f}, {row.leading_ci_high:.2f}]" if _number(row.leading_ci_low) else "")
        table.add_row(escape(row.mechanism), escape(row.variant or ""), row.mode, row.metric, row.axis, f"{row.exponent:.3f}", ci,
                      f"{row.r2:.3f}", leading, analytic, claimed, verdict)
    return table


def noise_lines(record: dict[str, Any]) -> list[str]:
    """Why a point's timing should not be quoted (noisy, spread unknown, busy machine); empty when it can be."""
    lines = []
    if is_noisy(record):
        lines.append(f"{NOISY_MARK} noisy timing: IQR/median {100 * relative_spread(record):.0f}% > {100 * NOISE_THRESHOLD:.0f}%")
    elif record.get("time_blocks") == 1:
        lines.append("spread unknown: one timed block (a longer --max-time times more)")
    load, cores = record.get("load_avg_1m"), record.get("cpu_count")
    if not is_missing(load) and not is_missing(cores) and float(load) > float(cores):
        lines.append(f"machine busy: 1-minute load {float(load):.2f} on {cores} cores")
    return lines


def record_table(record: dict[str, Any]) -> Table:
    """One measured point, as `effprof profile` prints it."""
    table = Table(title=escape(f"{record['mechanism']} — {record['mode']} — {record['status']}"), title_justify="left", show_header=False)
    table.add_column("field")
    table.add_column("value", justify="right")
    for key, metric in (
        ("flops_analytic", "flops"), ("flops_counted", "flops"), ("flops_fvcore", "flops"), ("time_s", "time"),
        ("time_iqr_s", "time"), ("peak_bytes", "bytes"), ("activation_bytes", "bytes"), ("state_bytes", "bytes"), ("params", "params"),
    ):
        if key in record:
            table.add_row(key, human(record[key], metric))
    for line in noise_lines(record):
        table.add_row("[bold yellow]timing[/]", f"[bold yellow]{escape(line)}[/]")
    if not is_missing(record.get("load_avg_1m")):
        table.add_row("load_avg_1m", f"{float(record['load_avg_1m']):.2f} on {record.get('cpu_count')} cores")
    if record.get("flops_counted") and record.get("flops_analytic"):
        table.add_row("counted / analytic", f"{record['flops_counted'] / record['flops_analytic']:.4f}")
    for key in ("fvcore_note", "uncounted_ops", "custom_ops", "error"):
        if record.get(key):
            table.add_row(key, escape(str(record[key])))
    return table


def progress_bar(console, total: int):
    """A rich progress bar with ETA over `total` points, on `console` (stderr keeps --json output clean)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=False,
    )


def point_label(record: dict[str, Any]) -> str:
    keys = ("impl", "seq_len", "d_model")
    return escape(f"{record['mechanism']} {record['mode']} " + " ".join(f"{k}={record[k]}" for k in keys if k in record))


def crossovers_table(crossings: list[dict[str, Any]]) -> Table:
    uncertain = any(c.get("uncertain") for c in crossings)
    table = Table(title="crossovers: where one series becomes cheaper than the other (log-space interpolation"
                  + (f"; {NOISY_MARK} uncertain: rests on noisy timings)" if uncertain else ")"), title_justify="left")
    for column in ("mode", "metric", "series A", "series B", "crossover", "cheaper below", "cheaper above"):
        table.add_column(column, justify="right" if column == "crossover" else "left")
    for c in crossings:
        where = f"{c['axis']} ≈ {c['at']:.0f}" if c["at"] is not None else c["note"]
        if c.get("uncertain"):
            where = f"[dim]{where} {NOISY_MARK} uncertain[/]"
        table.add_row(c["mode"], c["metric"], escape(c["a"]), escape(c["b"]), where, escape(str(c["cheaper_below"] or "")), escape(str(c["cheaper_above"] or "")))
    return table


def complexity_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="complexity: theory (from the specs) beside the measured exponent in seq_len", title_justify="left")
    for column in ("mechanism", "prefill", "meas.", "train", "meas.", "decode / token", "meas.", "state", "meas."):
        table.add_column(column, justify="right" if column == "meas." else "left")

    def cell(row: dict[str, Any], part: str) -> str:
        value, verdict = row.get(f"{part}_exponent"), row.get(f"{part}_verdict", "")
        if not _number(value):
            return "–"
        style = VERDICT_STYLE.get(verdict, "")
        return f"[{style}]{value:.2f}[/]" if style else f"{value:.2f}"

    for r in rows:
        table.add_row(escape(r["mechanism"]), escape(r["prefill"]), cell(r, "prefill"), escape(r["train"]), cell(r, "train"),
                      escape(r["decode"]), cell(r, "decode"), escape(r["state"]), cell(r, "state"))
    return table


def baseline_table(diff) -> Table:
    table = Table(title="against the baseline (time: beyond the runs' combined IQR, ≥ 5%; counts: beyond 0.5%)", title_justify="left")
    for column in ("mechanism", "mode", "point", "metric", "old", "new", "new/old", "change"):
        table.add_column(column, justify="right" if column in ("old", "new", "new/old") else "left")
    style = {"worse": "bold red", "better": "bold green", "same": "dim"}
    for r in diff.to_dict("records"):
        unit = "time" if r["metric"].startswith("time") else ("bytes" if r["metric"].endswith("bytes") else "flops")
        table.add_row(escape(r["mechanism"]), r["mode"], escape(r["point"]), r["metric"], human(r["old"], unit), human(r["new"], unit),
                      f"{r['ratio']:.3f}", f"[{style[r['change']]}]{r['change']}[/]" + (f" {NOISY_MARK} noisy" if r.get("noisy") else ""))
    return table


def session_tables(session: Session, baseline_series: str | None = None) -> list[Table]:
    """Everything `effprof compare` prints for a session, in order: the comparison tables, fits,
    crossovers, complexity, the baseline comparison."""
    tables = comparison_tables(session, baseline_series)
    if session.fits:
        tables.append(fits_table(session.fits_frame))
    if session.crossovers:
        tables.append(crossovers_table(session.crossovers))
    if session.complexity:
        tables.append(complexity_table(session.complexity))
    if session.baseline is not None:
        tables.append(baseline_table(session.baseline_frame))
    return tables


def summary_lines(session: Session) -> list[str]:
    """The summary as lines of rich markup: claims held, uncertain verdicts and crossovers, timing noise."""
    s = session.summary
    lines = [f"[bold]{s['held']} of {s['claims']} claims hold[/]"]
    for f in s["failing"]:
        lines.append(f"[bold red]fail[/] {escape(f['mechanism'])} {escape(f.get('variant') or '')} {f['mode']} {f['metric']}: "
                     f"claimed {f['claimed']:g}, measured {f['exponent']:.2f}")
    if s["uncertain"]:
        lines.append(f"[dim]{len(s['uncertain'])} time verdict(s) uncertain ({NOISE_NOTE}): not counted[/]")
    for c in s["crossovers"]:
        lines.append(f"{c['mode']} {c['metric']}: {escape(c['cheaper_above'])} is cheaper than {escape(c['cheaper_below'])} above {c['axis']} ≈ {c['at']:.0f}")
    for c in s["uncertain_crossovers"]:
        lines.append(f"[dim]{c['mode']} {c['metric']}: {escape(c['a'])} / {escape(c['b'])} near {c['axis']} ≈ {c['at']:.0f}: uncertain ({NOISY_MARK} noisy points)[/]")
    noise = s["noise"]
    if noise.get("noisy"):
        lines.append(f"[yellow]{noise['noisy']} of {noise['timed']} timed points are noisy ({NOISE_NOTE})[/]")
    return lines
