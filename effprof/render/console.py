"""Terminal tables (rich): rows are mechanisms/variants, columns the swept sizes, best value in bold green.

Like torch.utils.benchmark's Compare: one table per mode and metric; with a
baseline series, each cell also shows its ratio to the baseline.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from rich.markup import escape
from rich.table import Table

from effprof.render.series import METRIC_LABELS, TABLE_METRICS, add_labels, fmt_value, human, swept_axis

VERDICT_STYLE = {"pass": "bold green", "fail": "bold red", "inconclusive": "bold yellow", "no-claim": "dim"}


def comparison_tables(frame: pd.DataFrame, baseline: str | None = None) -> list[Table]:
    ok = frame[frame["status"] == "ok"] if "status" in frame.columns else frame
    if ok.empty:
        return []
    axis = swept_axis(ok)
    ok = add_labels(ok, axis)
    tables = []
    for mode, group in ok.groupby("mode", sort=False):
        sizes = sorted(group[axis].dropna().unique()) if axis else [None]
        for metric in TABLE_METRICS:
            if metric not in group.columns or group[metric].isna().all():
                continue
            tables.append(_metric_table(group, mode, metric, axis, sizes, baseline))
    return tables


def _metric_table(group: pd.DataFrame, mode: str, metric: str, axis: str | None, sizes: list, baseline: str | None) -> Table:
    title = f"{METRIC_LABELS[metric]} — {mode}" + (" — per generated token" if mode == "decode" and metric in ("flops_counted", "time_s") else "")
    table = Table(title=title, title_justify="left")
    table.add_column("mechanism")
    for size in sizes:
        table.add_column(f"{axis}={fmt_value(size)}" if axis else "value", justify="right")
    cells: dict[str, dict[Any, float]] = {}
    for series, rows in group.groupby("series", sort=False):
        cells[series] = {size: (rows[rows[axis] == size][metric].median() if axis else rows[metric].median()) for size in sizes}
    best = {size: min((v[size] for v in cells.values() if _number(v[size])), default=None) for size in sizes}
    base = cells.get(baseline) if baseline else None
    for series, values in cells.items():
        row = [escape(series)]
        for size in sizes:
            value = values[size]
            text = human(value, metric)
            if base is not None and _number(value) and _number(base[size]) and base[size] > 0 and series != baseline:
                text += f" ({value / base[size]:.2f}×)"
            if _number(value) and best[size] is not None and value == best[size] and len(cells) > 1:
                text = f"[bold green]{text}[/]"
            row.append(text)
        table.add_row(*row)
    return table


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not math.isnan(value)


def fits_table(fits: pd.DataFrame) -> Table:
    table = Table(title="scaling exponents: log-log slope over the upper half of the sizes (95% bootstrap CI); "
                  "leading: exponent p of the dominant term of a·x^p + b·x^q, q = 1 or 0", title_justify="left")
    numeric = ("exponent", "95% CI", "R²", "leading [CI]", "theory here", "claimed")
    for column in ("mechanism", "variant", "mode", "metric", "axis", *numeric, "verdict"):
        table.add_column(column, justify="right" if column in numeric else "left")
    for row in fits.itertuples():
        verdict = f"[{VERDICT_STYLE[row.verdict]}]{row.verdict}[/]"
        ci = f"[{row.ci_low:.2f}, {row.ci_high:.2f}]" if _number(row.ci_low) else "–"
        claimed = "–" if not _number(row.claimed) else f"{row.claimed:g}"
        analytic = "–" if not _number(row.analytic_exponent) else f"{row.analytic_exponent:.2f}"
        leading = "–"
        if _number(row.leading_exponent):
            leading = f"{row.leading_exponent:.2f}" + (f" [{row.leading_ci_low:.2f}, {row.leading_ci_high:.2f}]" if _number(row.leading_ci_low) else "")
        table.add_row(escape(row.mechanism), escape(row.variant or ""), row.mode, row.metric, row.axis, f"{row.exponent:.3f}", ci,
                      f"{row.r2:.3f}", leading, analytic, claimed, verdict)
    return table


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
    table = Table(title="crossovers: where one series becomes cheaper than the other (log-space interpolation)", title_justify="left")
    for column in ("mode", "metric", "series A", "series B", "crossover", "cheaper below", "cheaper above"):
        table.add_column(column, justify="right" if column == "crossover" else "left")
    for c in crossings:
        where = f"{c['axis']} ≈ {c['at']:.0f}" if c["at"] is not None else c["note"]
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
                      f"{r['ratio']:.3f}", f"[{style[r['change']]}]{r['change']}[/]")
    return table
