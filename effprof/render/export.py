"""Exports for papers, each rendering a Session: LaTeX tables (booktabs, siunitx numbers), CSV,
static figures (SVG, PDF, PNG at a column-width preset).

LaTeX (`latex`): the raw values (one table per mode and compared metric: a row per mechanism and
variant, a column per measured size, in one unit chosen from the table's data, effprof.render.axes
`unit_for`), the scaling fits and claims, the crossovers within the measured range (saying which
series is cheaper below and which above), and the complexity comparison. Every string that comes
from data (mechanism, variant, mode, metric, axis, statuses, complexity text, verdict reasons, the
command) passes through `escape.tex` at the one place a cell is made (`_cell`); the markup around
it is effprof's own. Noisy timings (IQR/median > 10%) carry a \\dag with a note under the table;
inconclusive verdicts say so, their reasons listed under the table.

CSV (`write_csv`): records, fits and crossovers; every string cell (and header) through
`escape.csv_cell`, so no spreadsheet evaluates one as a formula; numbers stay numbers. Noisy
timings are flagged in `time_noisy` / `time_iqr_over_median` (records), `noisy_points` /
`uncertain` (fits and crossovers).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from effprof.analyse.frames import is_missing, noisy_mask, ok_rows, variant_column, variant_words
from effprof.analyse.session import Session
from effprof.render.axes import axis_title, figure_name, metric_kind, metric_label, size_title, unit_for
from effprof.render.escape import csv_cell, tex
from effprof.store.metrics import COMPARED, METRICS, NOISE_THRESHOLD, relative_spread
from effprof.store.records import atomic_writer, is_number

PACKAGES = r"\usepackage{booktabs} and \usepackage{siunitx}"
NOISY = r"\textsuperscript{\dag}"  # the noise marker (metrics.NOISY_MARK) in LaTeX
NOISE_NOTE = rf"{NOISY} noisy timing: IQR/median above {100 * NOISE_THRESHOLD:.0f}\%."
MISSING = "--"  # a cell with nothing measured


class ExportError(RuntimeError):
    """An export that cannot be made here (a missing optional dependency): the message says what to install."""


# ---- LaTeX: cells -------------------------------------------------------------------------


def _cell(text: Any) -> str:
    """A string from data, as LaTeX text: the one way data reaches the .tex (escape.tex)."""
    return tex("" if is_missing(text) else text)


def _plain_number(value: float) -> str:
    """Three significant digits, never an exponent for figures in a table's unit (0.001 … 9999)."""
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _n(value: Any, digits: int = 3) -> str:
    """A number through siunitx (`\\num`), or -- where there is none."""
    if not is_number(value):
        return MISSING
    return rf"\num{{{float(value):.{digits}g}}}"


def _size(value: Any) -> str:
    return rf"\num{{{_plain_number(float(value))}}}" if is_number(value) else MISSING


def _note_mark(index: int) -> str:
    """a, b, … z, then 27, 28, …: the marks of notes under a table."""
    return chr(ord("a") + index) if index < 26 else str(index + 1)


class _Notes:
    """Notes under a table: each distinct text once, marked a, b, …; `mark(text)` gives the superscript."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def mark(self, text: str) -> str:
        if text not in self.texts:
            self.texts.append(text)
        return rf"\textsuperscript{{{_note_mark(self.texts.index(text))}}}"

    def lines(self) -> list[str]:
        return [rf"\textsuperscript{{{_note_mark(i)}}} {text}" for i, text in enumerate(self.texts)]


def _table(caption: str, label: str, header: list[str], rows: list[list[str]], align: str,
           notes: list[str] = (), top: str | None = None) -> str:
    """A booktabs table float. `header` and `rows` are LaTeX cells already (data through `_cell`);
    `top` is an extra header line above `header` (with its own \\cmidrule); `notes` go under the
    tabular in footnote size, one per line."""
    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{caption}}}", rf"\label{{{label}}}",
             rf"\begin{{tabular}}{{{align}}}", r"\toprule"]
    if top:
        lines.append(top)
    lines += [" & ".join(header) + r" \\", r"\midrule"]
    lines += [" & ".join(row) + r" \\" for row in rows]
    lines += [r"\bottomrule", r"\end{tabular}"]
    if notes:
        lines += [r"\par\smallskip{\footnotesize", *(note + r"\\" for note in notes[:-1]), notes[-1], "}"]
    lines += [r"\end{table}", ""]
    return "\n".join(lines)


class _Labels:
    """\\label keys that LaTeX accepts (ASCII letters, digits, dashes) and that never repeat."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def __call__(self, *parts: str) -> str:
        name = "".join(ch for ch in figure_name(*parts) if ch.isascii() and (ch.isalnum() or ch == "-")) or "table"
        label, count = f"tab:effprof-{name}", 1
        while label in self.used:
            count += 1
            label = f"tab:effprof-{name}-{count}"
        self.used.add(label)
        return label


# ---- LaTeX: the tables ----------------------------------------------------------------------


def raw_value_tables(session: Session, labels: _Labels | None = None) -> list[str]:
    """One table per mode × compared metric that was measured: a row per mechanism (and variant), a
    column per size of the swept axis; values in one unit chosen from the table's data (axes.unit_for),
    the median where a point was measured more than once, \\dag on noisy timings, and the status
    (oom, timeout, …) where a point failed."""
    labels = labels or _Labels()
    frame, axis = session.frame, session.axis
    if frame.empty or axis is None or axis not in frame.columns or "mode" not in frame.columns:
        return []
    frame = frame[frame[axis].map(is_number)]
    frame = frame.assign(_variant=variant_column(frame, axis), _noisy=noisy_mask(frame))
    ok = ok_rows(frame)
    tables = []
    for mode, group in ok.groupby("mode", sort=False):
        failed = frame[(frame["mode"] == mode) & (frame.get("status", "ok") != "ok")] if "status" in frame.columns else frame.iloc[0:0]
        for metric in COMPARED:
            if metric.column not in group.columns:
                continue
            measured = group[group[metric.column].map(is_number)]
            if measured.empty:
                continue
            tables.append(_raw_value_table(measured, failed, str(mode), metric.column, metric.timed, axis, labels))
    return tables


def _raw_value_table(measured: pd.DataFrame, failed: pd.DataFrame, mode: str, column: str, timed: bool, axis: str,
                     labels: _Labels) -> str:
    series = list(dict.fromkeys(zip(measured["mechanism"], measured["_variant"], strict=False)))
    failed = failed[[key in set(series) for key in zip(failed["mechanism"], failed["_variant"], strict=False)]] if len(failed) else failed
    sizes = sorted({float(s) for s in measured[axis]} | {float(s) for s in failed[axis]})  # a failed point's size says why
    unit = unit_for(metric_kind(column), measured[column].astype(float))
    with_variant = any(v for _, v in series)
    rows, noisy_shown = [], False
    for mechanism, variant in series:
        rows_of = measured[(measured["mechanism"] == mechanism) & (measured["_variant"] == variant)]
        fails = failed[(failed["mechanism"] == mechanism) & (failed["_variant"] == variant)] if len(failed) else failed
        cells = [_cell(mechanism)] + ([_cell(variant)] if with_variant else [])
        for size in sizes:
            at = rows_of[rows_of[axis].astype(float) == size]
            if at.empty:
                status = fails[fails[axis].astype(float) == size]["status"] if len(fails) else ()
                cells.append(_cell(status.iloc[0]) if len(status) else MISSING)
                continue
            value = float(at[column].astype(float).median()) / unit.scale
            noisy = timed and bool(at["_noisy"].any())
            noisy_shown |= noisy
            cells.append(rf"\num{{{_plain_number(value)}}}" + (rf"\rlap{{{NOISY}}}" if noisy else ""))
        rows.append(cells)
    lead = 2 if with_variant else 1
    quantity = axis_title(metric_label(column, mode), unit.symbol)
    top = (rf"\multicolumn{{{lead}}}{{l}}{{{_cell(quantity)}}} & \multicolumn{{{len(sizes)}}}{{c}}{{{_cell(size_title(axis))}}} \\"
           + "\n" + rf"\cmidrule(l){{{lead + 1}-{lead + len(sizes)}}}")
    header = ["Mechanism"] + (["Variant"] if with_variant else []) + [_size(s) for s in sizes]
    what = "median over repeated calls" if timed else {"flops_counted": "counted at the op dispatcher, a multiply-add is 2 FLOPs"}.get(column, "")
    caption = (f"{_cell(quantity[0].upper() + quantity[1:])}, {_cell(mode)} mode, at each {_cell(size_title(axis))}"
               + (f"; {what}" if what else "") + ".")
    notes = [NOISE_NOTE] if noisy_shown else []
    return _table(caption, labels("values", mode, column), header, rows, "l" * lead + "r" * len(sizes), notes, top)


def fits_tables(session: Session, labels: _Labels | None = None) -> list[str]:
    """Per mode: measured exponents, intervals and claims with their verdicts; inconclusive verdicts and
    their reasons (fit's `verdict_reason`) in notes under the table; \\dag on time verdicts over noisy points.
    The axis gets a column only where the fits of a mode span more than one."""
    labels = labels or _Labels()
    by_mode: dict[str, list[dict[str, Any]]] = {}
    for f in session.fits:
        by_mode.setdefault(str(f.get("mode")), []).append(f)
    tables = []
    for mode, fits in by_mode.items():
        notes, rows, noisy_shown = _Notes(), [], False
        axes = list(dict.fromkeys(str(f.get("axis")) for f in fits))
        with_variant = any(f.get("variant") for f in fits)
        for f in fits:
            verdict = _cell(f.get("verdict"))
            if f.get("verdict_reason"):
                verdict += notes.mark(_cell(f["verdict_reason"]))
            if f.get("uncertain"):
                verdict += rf" (uncertain{NOISY})"
                noisy_shown = True
            rows.append([_cell(f.get("mechanism")), *([_cell(variant_words(f.get("config")))] if with_variant else []),
                         _cell(_metric_name(f.get("metric"))), *([_cell(f.get("axis"))] if len(axes) > 1 else []),
                         _n(f.get("exponent")), f"[{_n(f.get('ci_low'))}, {_n(f.get('ci_high'))}]",
                         _n(f.get("leading_exponent")), _n(f.get("claimed")), verdict])
        note_lines = notes.lines() + ([rf"{NOISE_NOTE} The verdict is uncertain and not counted."] if noisy_shown else [])
        along = f"in {_cell(size_title(axes[0]))}" if len(axes) == 1 else "along each axis"
        caption = (f"Measured scaling exponents {along}, {_cell(mode)} mode: the log--log slope over the upper half of the "
                   "sizes with its 95\\% interval, the exponent of the leading term, the claimed exponent and the verdict "
                   "(pass, fail, inconclusive when these sizes cannot decide, no-claim).")
        header = ["Mechanism", *(["Variant"] if with_variant else []), "Metric", *(["Axis"] if len(axes) > 1 else []),
                  "Exponent", "95\\% CI", "Leading", "Claimed", "Verdict"]
        align = "l" * (2 + with_variant + (len(axes) > 1)) + "rcrrl"
        tables.append(_table(caption, labels("fits", mode), header, rows, align, note_lines))
    return tables


def module_fits_tex(session: Session, labels: _Labels | None = None) -> str | None:
    """Per-submodule scaling (the Session's module_fits, records measured with --breakdown): the log-log slope of each
    module's FLOPs, time and peak memory against the swept axis with its 95% interval; None when there are none."""
    if not session.module_fits:
        return None
    labels = labels or _Labels()
    column = {"flops": "flops", "time_s": "time", "peak_bytes": "peak_bytes"}
    rows = [[_cell(f.get("mechanism")), _cell(f.get("mode")), _cell(f.get("module")), _cell(f.get("type")),
             _cell(_metric_name(column.get(f.get("metric"), f.get("metric")))), _n(f.get("exponent")),
             f"[{_n(f.get('ci_low'))}, {_n(f.get('ci_high'))}]"] for f in session.module_fits]
    axis = session.module_fits[0].get("axis")
    caption = (f"Per-module scaling in {_cell(size_title(axis))}: the log--log slope of each submodule's cost (median per size) "
               "with its 95\\% interval, fitted as the mechanisms' totals are; (rest) is a module's own work between its "
               "children; modules measured at fewer than three sizes are not fitted.")
    return _table(caption, labels("module-fits"), ["Mechanism", "Mode", "Module", "Type", "Metric", "Exponent", "95\\% CI"], rows, "lllllrc")


def _metric_name(name: Any) -> Any:
    """How tables name a metric (metrics.METRICS label), or the name as given for one outside the table."""
    return METRICS[name].label if isinstance(name, str) and name in METRICS else name


def crossovers_tex(session: Session, labels: _Labels | None = None) -> str | None:
    """The crossovers within the measured range: which series is cheaper below the crossing size and
    which above. Pairs that never cross in range are left out (the crossovers CSV lists every pair)."""
    found = [c for c in session.crossovers if is_number(c.get("at"))]
    equal = [c for c in session.crossovers if c.get("equal")]
    if not found and not equal:
        return None
    labels = labels or _Labels()
    axis = (found or equal)[0].get("axis") or session.axis or ""
    rows, noisy_shown = [], False
    for c in found:
        at = _size(c["at"])
        if c.get("uncertain"):
            at += rf" (uncertain{NOISY})"
            noisy_shown = True
        rows.append([_cell(c.get("mode")), _cell(_metric_name(c.get("metric"))), _cell(c.get("cheaper_below")),
                     _cell(c.get("cheaper_above")), at])
    notes = _Notes()
    for c in equal:  # equal series: listed so a reader knows they were compared, marked so no one reads an order into them
        tolerance = c.get("tolerance")
        mark = notes.mark("Equal at every measured size" + (f" (within {100 * tolerance:g}\\%)" if is_number(tolerance) else "")
                          + ": no crossover, neither series is cheaper.")
        rows.append([_cell(c.get("mode")), _cell(_metric_name(c.get("metric"))), _cell(c.get("a")), _cell(c.get("b")), "equal" + mark])
    caption = (f"Crossovers within the measured sizes: at the {_cell(size_title(axis))} given, the two series cost the same "
               "(interpolated in log--log between the two measured sizes around it); the series in "
               "``cheaper below'' is cheaper at smaller sizes, the one in ``cheaper above'' at larger sizes. "
               "Pairs that do not cross within the measured sizes are not listed, except pairs equal at every size (``equal'').")
    notes = notes.lines() + ([rf"{NOISE_NOTE} The crossover rests on it and is uncertain."] if noisy_shown else [])
    return _table(caption, labels("crossovers"), ["Mode", "Metric", "Cheaper below", "Cheaper above", "Crossover"],
                  rows, "llllr", notes)


def complexity_tex(session: Session, labels: _Labels | None = None) -> str | None:
    """Theory (the spec's complexity text) beside the exponent measured in sequence length."""
    if not session.complexity:
        return None
    labels = labels or _Labels()

    def measured(row: dict[str, Any], part: str) -> str:
        verdicts = str(row.get(f"{part}_verdict") or "").split(",")
        judged = next((v for v in ("fail", "inconclusive") if v in verdicts), None)
        return _n(row.get(f"{part}_exponent")) + (f" ({_cell(judged)})" if judged else "")

    rows = [[_cell(r.get("mechanism")), _cell(r.get("prefill")), measured(r, "prefill"), _cell(r.get("decode")), measured(r, "decode"),
             _cell(r.get("state")), measured(r, "state")] for r in session.complexity]
    text = r">{\raggedright\arraybackslash}p{0.17\linewidth}"  # theory wraps; array is loaded by siunitx
    caption = ("Complexity: each mechanism's theoretical cost beside the exponent measured in sequence length "
               "(the leading term's where fitted); (fail) or (inconclusive) where the claim is not met or these sizes cannot decide.")
    return _table(caption, labels("complexity"), ["Mechanism", "Prefill", "Meas.", "Decode/token", "Meas.", "State", "Meas."],
                  rows, f"l{text}r{text}r{text}r")


def roofline_tex(session: Session, labels: _Labels | None = None) -> str | None:
    """Per series and mode at the largest size: measured time, roofline bound, its limit, the achieved fraction of the
    bound and the arithmetic intensity (effprof.render.roofline.largest_size_rows); with --hardware, the projection."""
    from effprof.render.roofline import largest_size_rows

    labels = labels or _Labels()
    rows = largest_size_rows(session.frame)
    if not rows:
        return None
    projected = session.hardware is not None
    cells = []
    timed = ("time_s", "roofline_bound_s", "projected_time_s")
    unit = unit_for("time", [float(r[k]) for r in rows for k in timed if r[k] is not None])  # one unit for the table, from its data
    for r in rows:
        ms = [None if r[k] is None else float(r[k]) / unit.scale for k in timed]
        fraction = None if r["roofline_fraction"] is None else 100 * float(r["roofline_fraction"])
        cells.append([_cell(r["series"]), _cell(r["mode"]), _cell(r["size"]), _n(ms[0]), _n(ms[1]), _cell(r["roofline_limit"] or MISSING),
                      _n(fraction), _n(r["arithmetic_intensity"]),
                      *([_n(ms[2]), _cell(r["projected_limit"] or MISSING)] if projected else [])])
    shorts = (METRICS[name].short for name in ("roofline_bound", "roofline_fraction", "intensity"))
    bound, achieved, intensity = (_cell(short[:1].upper() + short[1:]) for short in shorts)
    header = ["Mechanism", "Mode", "Size", f"Measured ({_cell(unit.symbol)})", f"{bound} ({_cell(unit.symbol)})", "Limit", rf"{achieved} (\%)", intensity,
              *([f"Projected on {_cell(session.hardware['name'])} ({_cell(unit.symbol)})", "Limit"] if projected else [])]
    caption = ("Roofline at the largest size: the bound is the model's lower bound on time (per op, max of FLOPs over the measured "
               "peak and bytes over the measured bandwidth, plus the dispatch overhead per op); achieved is bound over measured time."
               + (f" Projected: a roofline projection onto {_cell(session.hardware['title'])} from its datasheet figures, a lower "
                  "bound, not a measurement." if projected else ""))
    return _table(caption, labels("roofline"), header, cells, "lll" + "rr" + "l" + "rr" + ("rl" if projected else ""))


def latex(session: Session) -> str:
    """The booktabs tables of a session (needs booktabs and siunitx): raw values, fits and claims,
    crossovers, complexity, the roofline; tables with nothing to show are left out."""
    noise, labels = session.noise, _Labels()
    omitted = sum(not is_number(c.get("at")) for c in session.crossovers)
    equal = sum(bool(c.get("equal")) for c in session.crossovers)
    parts = [f"% generated by effprof; needs {PACKAGES}",
             *([f"% command: {_cell(session.command)}"] if session.command else []),
             f"% timing: {noise.get('noisy', 0)} of {noise.get('timed', 0)} timed points noisy (IQR/median > {100 * NOISE_THRESHOLD:.0f}\\%)",
             f"% crossovers: {len(session.crossovers) - omitted} within the measured sizes, {omitted} pairs without one"
             + (f", {equal} of them equal at every size" if equal else "") + " (the CSV lists every pair)",
             ""]
    parts += raw_value_tables(session, labels)
    parts += fits_tables(session, labels)
    parts += [t for t in (crossovers_tex(session, labels), complexity_tex(session, labels), roofline_tex(session, labels),
                          module_fits_tex(session, labels)) if t]
    return "\n".join(parts)


# ---- CSV ------------------------------------------------------------------------------------


def _csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with every string cell and column name through escape.csv_cell (numbers untouched)."""
    out = frame.map(csv_cell) if len(frame.columns) else frame
    return out.rename(columns=lambda name: csv_cell(str(name)))


def write_csv(session: Session, path: str | Path) -> list[str]:
    """Records to `path`, fits to `<stem>_fits.csv`, crossovers to `<stem>_crossovers.csv` and per-submodule fits to
    `<stem>_module_fits.csv` beside it (csv_paths).

    Nested fields (layer_kinds, breakdown, time_samples_s, expert_load, claims, complexity, a fit's local
    slopes and sizes) are written as JSON text. Every string cell passes through escape.csv_cell.
    """
    path = Path(path)
    frame = session.frame
    records = frame.copy()
    for column in records.columns:
        if records[column].map(lambda v: isinstance(v, (list, dict))).any():
            records[column] = records[column].map(lambda v: v if not isinstance(v, (list, dict)) else json.dumps(v))
    if "time_s" in records.columns:
        records["time_noisy"] = noisy_mask(frame)
        records["time_iqr_over_median"] = [relative_spread(r) for r in frame.to_dict("records")]
    fits = session.fits_frame
    for column in ("local", "sizes", "config"):
        if column in fits.columns:
            fits[column] = fits[column].map(lambda v: json.dumps(v) if isinstance(v, (list, tuple, dict)) else v)
    paths = csv_paths(path)
    module_fits = pd.DataFrame(session.module_fits)
    if "sizes" in module_fits.columns:
        module_fits["sizes"] = module_fits["sizes"].map(lambda v: json.dumps(v) if isinstance(v, (list, tuple)) else v)
    for table, where in zip((records, fits, pd.DataFrame(session.crossovers), module_fits), paths, strict=True):
        with atomic_writer(where) as f:  # as every file effprof writes: never through a symlink, never into a FIFO
            _csv_frame(table).to_csv(f, index=False)
    return [str(p) for p in paths]


def csv_paths(path: str | Path) -> list[Path]:
    """The files `--csv path` writes: the records to `path`, fits to `<stem>_fits.csv`, crossovers to `<stem>_crossovers.csv`,
    per-submodule fits (records measured with --breakdown) to `<stem>_module_fits.csv`."""
    path = Path(path)
    return [path, *(path.with_name(f"{path.stem}_{part}.csv") for part in ("fits", "crossovers", "module_fits"))]


def write_figures(session: Session, folder: str | Path, size: str = "single") -> list[str]:
    """Every report figure as SVG, PDF and PNG at a column-width preset (effprof.render.static; needs kaleido
    and a Chrome/Chromium), named <mode>-<metric> (forward-time.pdf), roofline-<mode>, expert-load and
    pattern-<mechanism> for each attention pattern the session holds."""
    from effprof.render.axes import figure_name
    from effprof.render.figures import expert_load_figure, metric_figures
    from effprof.render.patterns import pattern_figure
    from effprof.render.roofline import roofline_figures
    from effprof.render.static import StaticExportError, export_figures

    frame, fits = session.frame, session.fits_frame
    figures = [fig for _, _, fig in metric_figures(frame, fits)] + [*roofline_figures(frame), expert_load_figure(frame)]
    named = [(fig.layout.meta["name"], fig) for fig in figures if fig is not None]
    named += [(figure_name("pattern", data["name"]), pattern_figure(data)) for data in session.patterns or ()]
    try:
        return export_figures(named, folder, size)
    except StaticExportError as e:
        raise ExportError(str(e)) from None


def write_exports(session: Session, latex_path: str | Path | None = None, csv_path: str | Path | None = None,
                  figures_folder: str | Path | None = None, figure_size: str = "single") -> list[str]:
    """Write whichever of the LaTeX tables, CSVs and static figures were asked for; one line per export
    saying what was written (for the command to print). ExportError where figures cannot be made here."""
    done = []
    if latex_path is not None:
        latex_path = Path(latex_path)
        latex_path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_writer(latex_path) as f:
            f.write(latex(session))
        done.append(f"LaTeX: {latex_path}")
    if csv_path is not None:
        Path(csv_path).parent.mkdir(parents=True, exist_ok=True)
        done.append("CSV: " + ", ".join(write_csv(session, csv_path)))
    if figures_folder is not None:
        done.append(f"figures: {len(write_figures(session, figures_folder, figure_size))} files in {figures_folder}")
    return done
