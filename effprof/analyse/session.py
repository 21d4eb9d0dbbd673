"""Analysis, done once (no torch): `analyse(records, baseline=None) -> Session`.

A Session holds everything the renderers show — the records, the scaling fits and claim
verdicts (effprof.analyse.fit), the crossovers, the complexity table, the baseline comparison, the
attention-pattern data, and a noise summary — and saves as JSON beside the results file, so
console, HTML, LaTeX and CSV outputs are each `render(session)` and never recompute.

Crossovers: for every pair of series measured in one mode, and each compared metric, the size
on the swept axis where one becomes cheaper than the other, interpolated linearly in
log(size)–log(value) between the two measured sizes that bracket the sign change; "none in
range" when one stays cheaper throughout; "equal" (no crossover, neither cheaper) when the two are
equal within the metric's tolerance (`crossing_tolerance`: 5% for time, 0.5% for counts) at every
common size — identical series never "cross" at their first size. A time crossover is `uncertain` when any of the
points it rests on (the bracketing sizes of both series; every size for "none in range") is
noisy: it is shown, marked, and never stated as a finding.

Baseline comparison: each point of a new run against the same point (same mechanism, mode and
config) of an old run, under one rule (`change`) that `effprof check` shares: a change counts
only beyond the noise — for time, beyond the two runs' combined IQR (and at least 5%); for
counted quantities (FLOPs, bytes), beyond 0.5% — and beyond the allowed ratio where one is given.

Noise: a point whose timing has IQR / median > 10% is noisy (metrics.is_noisy); fits of a timed
metric over a series with noisy points are `uncertain`, as are crossovers resting on them.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from effprof.analyse.frames import add_labels, fmt_value, noisy_mask, ok_rows, plain_value, swept_axis, varying_keys
from effprof.analyse.outcome import tally
from effprof.store.metrics import CROSSED, METRICS, NOISE_THRESHOLD, is_busy, is_noisy
from effprof.store.records import SCHEMA_VERSION, ResultsError, is_missing, json_ready, point_identity, to_frame, upgrade
from effprof.suggest import one_line

TIME_NOISE_FLOOR = 0.05
COUNT_TOLERANCE = 0.005
SESSION_VERSION = 3  # 2: source_sha256 added; patterns hold data only (version 1 could hold a `div` of markup); 3: module_fits


# ---- crossovers -------------------------------------------------------------------------


def crossovers(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Every pair of series × compared metric in each mode: where (if anywhere in range) their order flips."""
    ok = ok_rows(frame)
    axis = swept_axis(ok)
    if ok.empty or axis is None:
        return []
    ok = add_labels(ok, axis)
    ok = ok.assign(_noisy=noisy_mask(ok))
    out = []
    for mode, group in ok.groupby("mode", sort=False):
        series = dict(iter(group.groupby("series", sort=False)))
        for metric in CROSSED:
            if metric.column not in group.columns:
                continue
            curves, noisy = {}, {}
            for name, rows in series.items():
                values = rows.groupby(axis)[metric.column].median().dropna()
                values = values[values > 0]
                if len(values) >= 2:
                    curves[name] = values
                    noisy[name] = set(rows.loc[rows["_noisy"], axis]) if metric.timed else set()
            for a, b in itertools.combinations(curves, 2):
                crossing = _crossing(curves[a], curves[b], crossing_tolerance(metric.name))
                rests_on = crossing.pop("rests_on")
                names = {"a": a, "b": b, None: None}
                crossing["cheaper_below"], crossing["cheaper_above"] = names[crossing["cheaper_below"]], names[crossing["cheaper_above"]]
                noisy_points = sum(size in noisy[a] for size in rests_on) + sum(size in noisy[b] for size in rests_on)
                counted = "measured_by" in group.columns and bool((group["measured_by"] == "count").all())
                out.append({"mode": mode, "metric": metric.name, "axis": axis, "a": a, "b": b, **crossing, "equal": crossing["note"] == "equal",
                            "tolerance": crossing_tolerance(metric.name),
                            "noisy_points": noisy_points, "uncertain": noisy_points > 0,
                            # counts (--count-only) of shapes, never timings: a crossover of counts says nothing of time
                            "measured_by": "count" if counted else "run"})
    return out


def crossing_tolerance(metric: str) -> float:
    """The relative difference below which two series count as equal at a size: the metric's noise floor
    (5% for time, 0.5% for counted quantities), the same bands the baseline rule uses."""
    return TIME_NOISE_FLOOR if METRICS[metric].timed else COUNT_TOLERANCE


def _crossing(a: pd.Series, b: pd.Series, tolerance: float = 0.0) -> dict[str, Any]:
    """Where series `a` and `b` (value by size) change order. Sizes where they differ by at most `tolerance`
    (relative) count as equal: equal at every common size is "equal" (no crossover, neither cheaper); the
    order flips only between a size where one is cheaper beyond the tolerance and a later one where the other is."""
    sizes = sorted(set(a.index) & set(b.index))
    if len(sizes) < 2:
        return {"at": None, "cheaper_below": None, "cheaper_above": None, "note": "too few common sizes", "rests_on": sizes}
    x = np.log(np.array(sizes, dtype=float))
    d = np.log(a[sizes].to_numpy(dtype=float)) - np.log(b[sizes].to_numpy(dtype=float))  # < 0: a cheaper
    band = math.log1p(tolerance) + 1e-12
    sign = np.where(np.abs(d) <= band, 0, np.sign(d))
    apart = [i for i in range(len(sizes)) if sign[i] != 0]
    if not apart:
        return {"at": None, "cheaper_below": None, "cheaper_above": None, "note": "equal", "rests_on": sizes}
    for i, j in itertools.pairwise(apart):
        if sign[i] != sign[j]:
            t = d[i] / (d[i] - d[j])
            at = float(math.exp(x[i] + t * (x[j] - x[i])))
            below, above = ("a", "b") if sign[i] < 0 else ("b", "a")
            return {"at": at, "cheaper_below": below, "cheaper_above": above, "note": "", "rests_on": sizes[i:j + 1]}
    cheaper = "a" if sign[apart[0]] < 0 else "b"
    equal = [s for s, g in zip(sizes, sign, strict=True) if g == 0]
    note = "none in range" + (f" (equal at {', '.join(fmt_value(s) for s in equal)})" if equal else "")
    return {"at": None, "cheaper_below": cheaper, "cheaper_above": cheaper, "note": note, "rests_on": sizes}


# ---- the baseline rule ------------------------------------------------------------------


def noise_band(metric: str, old: float, iqr_new: Any = None, iqr_old: Any = None) -> float:
    """Relative change (against `old`) that is still noise: for a timed metric the two runs' combined
    IQR over the old value, at least 5%; for counted quantities 0.5%."""
    if not METRICS[metric].timed:
        return COUNT_TOLERANCE
    spread = sum(float(v) for v in (iqr_new, iqr_old) if _positive(v))
    return max(TIME_NOISE_FLOOR, spread / old)


def change(metric: str, new: float, old: float, iqr_new: Any = None, iqr_old: Any = None, allowed: float = 1.0) -> tuple[str, float]:
    """The one baseline rule: ("worse" | "better" | "same", the threshold ratio used).

    worse  when new > old × max(allowed, 1 + noise band)
    better when new < old / max(allowed, 1 + noise band)
    `allowed` is a tolerated slowdown (check's `regression = 1.1`); the report uses 1 (any change
    beyond noise). Time: the noise band makes new − old exceed the two runs' combined IQR.
    """
    threshold = max(allowed, 1.0 + noise_band(metric, old, iqr_new, iqr_old))
    if new > old * threshold * (1 + 1e-9):
        return "worse", threshold
    if new * threshold * (1 + 1e-9) < old:
        return "better", threshold
    return "same", threshold


def baseline_diff(new: pd.DataFrame, old: pd.DataFrame, allowed: dict[str, float] | None = None) -> pd.DataFrame:
    """The one baseline diff: each measured point of `new` against the same point of `old` (records.point_identity:
    mechanism, mode and full config; the latest record of a point wins), per metric, judged by `change`.

    `allowed`: {metric name: tolerated ratio} to compare (`effprof check`'s [regression] table); by default every
    compared metric at 1 (any change beyond noise: the report). A value present in both runs is compared, zero
    included: 0 → 0 is the same, 0 → more is worse (ratio inf), more → 0 better. A row's `point` names the config
    keys that vary among the new points (no key hard-coded), "defaults" where none does.
    """
    new, old = ok_rows(new), ok_rows(old)
    if new.empty or old.empty:
        return pd.DataFrame()
    metrics = [(m, 1.0) for m in CROSSED] if allowed is None else [(METRICS[name], ratio) for name, ratio in allowed.items()]
    old_by_key = {point_identity(r): r for r in old.to_dict("records")}
    varying = varying_keys(new, within=None)
    rows = []
    for r in new.to_dict("records"):
        o = old_by_key.get(point_identity(r))
        if o is None:
            continue
        key = ", ".join(f"{k}={fmt_value(r[k])}" for k in varying if not is_missing(r.get(k))) or "defaults"
        for metric, ratio_allowed in metrics:
            column = metric.column
            if not (_finite(r.get(column)) and _finite(o.get(column))):
                continue
            now, before = float(r[column]), float(o[column])
            iqr = (r.get("time_iqr_s"), o.get("time_iqr_s")) if metric.timed else (None, None)
            if before > 0:
                verdict, threshold = change(metric.name, now, before, *iqr, allowed=ratio_allowed)
                ratio = now / before
            else:  # nothing before: any amount now is a change the noise cannot explain
                verdict, threshold, ratio = ("same", ratio_allowed, 1.0) if now == 0 else ("worse", ratio_allowed, math.inf)
            rows.append({"mechanism": r["mechanism"], "mode": r["mode"], "point": key, "metric": column, "name": metric.name,
                         "old": before, "new": now, "ratio": ratio, "noise_band": threshold - 1.0, "allowed": ratio_allowed,
                         "change": verdict, "noisy": metric.timed and (is_noisy(r) or is_noisy(o))})
    return pd.DataFrame(rows)


def _finite(value: Any) -> bool:
    """A measured value: a finite number at or above zero (not a bool)."""
    return (isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool) and math.isfinite(float(value))
            and float(value) >= 0)


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float, np.floating, np.integer)) and math.isfinite(float(value)) and float(value) > 0


# ---- complexity -------------------------------------------------------------------------


def complexity_rows(frame: pd.DataFrame, fits: pd.DataFrame) -> list[dict[str, Any]]:
    """Per mechanism: theoretical prefill/train cost, decode cost per token and state (from its spec),
    beside the measured exponents along the swept axis and their verdicts."""
    if frame.empty or "complexity" not in frame.columns:
        return []
    rows = []
    for mechanism, group in frame.groupby("mechanism", sort=False):
        theory = next((c for c in group["complexity"] if isinstance(c, dict)), {})
        measured = fits[fits["mechanism"] == mechanism] if fits is not None and not fits.empty else pd.DataFrame()
        row = {"mechanism": mechanism, "family": group["family"].iloc[0] if "family" in group else "",
            "prefill": theory.get("prefill", ""), "train": theory.get("train", ""),
            "decode": theory.get("decode", ""), "state": theory.get("state", "")}
        for label, mode, metric in (("prefill_exponent", "forward", "flops"), ("train_exponent", "train", "flops"),
                                    ("decode_exponent", "decode", "flops"), ("state_exponent", None, "state_bytes")):
            match = measured[(measured["metric"] == metric) & (measured["axis"] == "seq_len")] if not measured.empty else measured
            if mode is not None and not match.empty:
                match = match[match["mode"] == mode]
            if match.empty:
                row[label], row[label.replace("exponent", "verdict")] = None, ""
                continue
            best = match.iloc[0]
            row[label] = float(best["leading_exponent"]) if _positive(best.get("leading_exponent")) else float(best["exponent"])
            row[label.replace("exponent", "verdict")] = ",".join(sorted(set(match["verdict"])))
        rows.append(row)
    return rows


# ---- fits -------------------------------------------------------------------------------


def scaling_fits(frame: pd.DataFrame, fits: pd.DataFrame | None = None) -> pd.DataFrame:
    """The scaling fits of a frame of records with their noise marked: one row per fitted series, effprof.fit's
    FIT_COLUMNS plus `noisy_points` and `uncertain` (mark_noisy_fits).

    The one way fits are made: `effprof fit`, `effprof inspect --results`, the Python `effprof.fit()` and `analyse`
    (the Session every renderer reads) all call this, so the same records give the same rows everywhere.
    `fits`: fit_frame's rows already computed for these records, marked here instead of refitted.
    """
    from effprof.analyse.fit import fit_frame

    return mark_noisy_fits(fit_frame(frame) if fits is None else fits, frame)


# ---- noise ------------------------------------------------------------------------------


def mark_noisy_fits(fits: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """Add `noisy_points` (noisy records in the fitted series of a timed metric) and `uncertain` to fits.

    Only the fits of a timed metric whose (mechanism, mode) holds a noisy record are looked at one by one
    (a file of 25k series has a handful): the others are 0 without a Python object per row.
    """
    fits = fits.copy()
    if fits.empty:
        return fits.assign(noisy_points=pd.Series(dtype=int), uncertain=pd.Series(dtype=bool))
    ok = ok_rows(frame)
    by_series: dict[tuple[str, str], list[dict[str, Any]]] = {}  # noisy records by (mechanism, mode), as plain dicts
    for record in ok[noisy_mask(ok)].to_dict("records"):
        by_series.setdefault((record["mechanism"], record["mode"]), []).append(record)
    counts = np.zeros(len(fits), dtype=int)
    if by_series:
        timed = {m for m in set(fits["metric"]) if m in METRICS and METRICS[m].timed}
        mechanisms, modes, metrics = fits["mechanism"].tolist(), fits["mode"].tolist(), fits["metric"].tolist()
        configs, axes, all_sizes = ([None] * len(fits) if c not in fits.columns else fits[c].tolist() for c in ("config", "axis", "sizes"))
        for i in (i for i, key in enumerate(zip(mechanisms, modes, strict=True)) if key in by_series and metrics[i] in timed):
            rows = by_series[(mechanisms[i], modes[i])]
            for key, value in (configs[i] if isinstance(configs[i], dict) else {}).items():  # the series' structured key
                rows = [r for r in rows if key in r and not is_missing(r[key]) and plain_value(r[key]) == value]
            if isinstance(all_sizes[i], (list, tuple)):
                rows = [r for r in rows if r.get(axes[i]) in all_sizes[i]]
            counts[i] = len(rows)
    fits["noisy_points"] = counts
    fits["uncertain"] = fits["noisy_points"] > 0
    return fits


def noise_summary(frame: pd.DataFrame) -> dict[str, Any]:
    """How many timed points were noisy, and how busy the machine was (metrics.is_busy)."""
    ok = ok_rows(frame)
    timed = ok[ok["time_s"].notna()] if "time_s" in ok.columns else ok.iloc[0:0]
    rows = timed.to_dict("records")
    loads = [(float(r["load_avg_1m"]), int(r["cpu_count"])) for r in rows
             if not is_missing(r.get("load_avg_1m")) and not is_missing(r.get("cpu_count"))]
    return {
        "threshold": NOISE_THRESHOLD,
        "timed": len(timed),
        "noisy": int(noisy_mask(timed).sum()) if len(timed) else 0,
        "busy": sum(is_busy(r) for r in rows),
        "max_load": max((load for load, _ in loads), default=None),
        "cpu_count": max((cores for _, cores in loads), default=None),
    }


# ---- the session ------------------------------------------------------------------------


@dataclasses.dataclass
class Session:
    """Everything the renderers show, computed once by `analyse`; saved and loaded as JSON.

    records      the measured points (records.Record, current schema)
    fits         effprof.analyse.fit rows, plus noisy_points / uncertain
    crossovers   crossovers(), each with noisy_points / uncertain
    complexity   complexity_rows()
    baseline     baseline_diff() rows, or None when no baseline was given
    patterns     attention-pattern data of the sparse mechanisms ({name, n, rows, cols, pairs, density, ...}),
                 or None when it was not measured (it needs torch: `effprof compare` measures it)
    noise        noise_summary()
    axis         the swept config key
    source_sha256  SHA-256 of the results file the session was made from (records.file_digest), or None for
                 records that came from no file: `effprof report R.jsonl` uses R.session.json only when it matches
    hardware     the --hardware entry the records' projected_* fields project onto ({name, title, figures: every
                 figure with its source, assumptions, notes}), or None
    module_fits  per-submodule exponents of records measured with --breakdown (analyse.fit_breakdown), sorted by
                 mechanism, mode, metric and module path
    points       (a property) the records with repeats of a point shown once (analyse.points.aggregate)
    """

    records: list[dict[str, Any]]
    fits: list[dict[str, Any]]
    crossovers: list[dict[str, Any]]
    complexity: list[dict[str, Any]]
    baseline: list[dict[str, Any]] | None = None
    patterns: list[dict[str, Any]] | None = None
    noise: dict[str, Any] = dataclasses.field(default_factory=dict)
    axis: str | None = None
    title: str = "effprof report"
    command: str = ""
    source_sha256: str | None = None
    hardware: dict[str, Any] | None = None
    module_fits: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    @property
    def frame(self) -> pd.DataFrame:
        """The records as a DataFrame (one row per record): built once, a copy each time (renderers may add columns)."""
        if isinstance(self.records, FrameRecords):
            return self.records.frame.copy()
        return self._built("records", lambda: to_frame(self.records)).copy()

    @property
    def fits_frame(self) -> pd.DataFrame:
        from effprof.analyse.fit import FIT_COLUMNS

        empty = [*FIT_COLUMNS, "noisy_points", "uncertain"]
        return self._built("fits", lambda: pd.DataFrame(self.fits) if self.fits else pd.DataFrame(columns=empty)).copy()

    @property
    def points(self) -> pd.DataFrame:
        """Each point once: the medians of its repeated records and their count (analyse.points.aggregate)."""
        from effprof.analyse.points import aggregate

        return self._built("records", lambda: aggregate(self.frame), key="points").copy()

    def _built(self, name: str, build, key: str | None = None) -> pd.DataFrame:
        """A frame built from one of the session's lists once (a report reads the records' frame five times);
        rebuilt when that list is replaced or changed in length."""
        cache = self.__dict__.setdefault("_frames", {})
        source = getattr(self, name)
        stamp, slot = (id(source), len(source)), key or name
        if cache.get(slot, (None,))[0] != stamp:
            cache[slot] = (stamp, build())
        return cache[slot][1]

    @property
    def baseline_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.baseline or [])

    @property
    def summary(self) -> dict[str, Any]:
        """Which claims hold (uncertain time verdicts apart; an inconclusive verdict never holds), and the
        headline crossovers (certain ones only)."""
        outcomes = tally(self.fits)
        judged = outcomes["pass"] + outcomes["fail"] + outcomes["inconclusive"]
        headline = [c for c in self.crossovers if c["at"] is not None and c["metric"] in ("time", "flops")]
        return {"claims": len(judged), "held": len(outcomes["pass"]), "failing": outcomes["fail"],
                "inconclusive": outcomes["inconclusive"], "uncertain": outcomes["uncertain"],
                "crossovers": [c for c in headline if not c["uncertain"]][:12],
                "uncertain_crossovers": [c for c in headline if c["uncertain"]][:12], "noise": self.noise}

    def save(self, path: str | Path, records_in: str | Path | None = None) -> str:
        """Write the session as JSON (atomically); returns the path.

        `records_in`: the results file the session was made from (its source_sha256), in the same folder: the
        records are then not copied into the session (it names the file instead, and load reads them from there
        while its hash matches), so a session beside 300k records is the analysis alone, not a second copy of them.
        """
        from effprof.store.records import atomic_writer

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if records_in is not None and (self.source_sha256 is None or Path(records_in).resolve().parent != path.resolve().parent):
            raise ValueError("records_in: the results file beside the session (same folder) whose hash is source_sha256")
        with atomic_writer(path) as f:  # a unique temporary file, never a predictable <path>.tmp
            f.write(f'{{"session": {SESSION_VERSION}')
            for field in dataclasses.fields(self):
                value = getattr(self, field.name)
                if field.name == "records" and records_in is not None:
                    f.write(f', "records_in": {json.dumps(Path(records_in).name)}')
                    continue
                f.write(f", {json.dumps(field.name)}: ")
                if field.name == "records":  # a record at a time: 300k records never become one JSON text in memory
                    f.write("[")
                    for i, record in enumerate(value):
                        f.write((", " if i else "") + json.dumps(json_ready(record), default=str))
                    f.write("]")
                else:
                    f.write(json.dumps(json_ready(value), default=str))
            f.write("}")
        return str(path)

    @classmethod
    def load(cls, path: str | Path, records: bool = True) -> Session:
        """A saved session, checked as records are (effprof.analyse.session_schema: a crafted or damaged file is a
        SessionError naming the file and why, never a traceback); records of older schemas are converted.
        A FIFO or device at `path` is refused without blocking. A session that names its results file
        (`records_in`) reads its records from there, as columns, only while that file's SHA-256 is its
        source_sha256; records=False leaves them out (the analysis alone: what `effprof report` needs)."""
        from effprof.analyse.session_schema import session_problem
        from effprof.store.records import file_digest, open_regular, read_frame

        path = Path(path)
        shown = repr(str(path))
        try:
            with os.fdopen(open_regular(path), "rb") as f:
                data = json.loads(f.read().decode("utf-8"))
        except (OSError, UnicodeDecodeError) as e:
            raise SessionError(f"session file {shown} cannot be read: {getattr(e, 'strerror', None) or e}") from None
        except RecursionError:
            raise SessionError(f"session file {shown} is nested too deeply to be a session") from None
        except ValueError as e:  # not JSON, or an integer of thousands of digits
            raise SessionError(f"session file {shown} is not JSON: {one_line(e, 120)}") from None
        problem = session_problem(data, SESSION_VERSION)
        if problem is not None:
            raise SessionError(f"session file {shown} {problem}")
        data.pop("session")
        source = data.pop("records_in", None)
        fields = {f.name for f in dataclasses.fields(cls)}
        session = cls(**{"records": [], **{k: v for k, v in data.items() if k in fields}})
        if source is not None and records:
            results = path.parent / source
            try:
                digest = file_digest(results)
            except OSError as e:
                raise SessionError(f"session file {shown} reads its records from {str(results)!r}, which cannot be read: "
                                   f"{e.strerror or e}") from None
            if digest != session.source_sha256:
                raise SessionError(f"session file {shown} was made from other records than {str(results)!r} (its content hash differs)")
            session.records = FrameRecords(read_frame(results))
        elif records:
            session.records = [upgrade(r, str(path)) for r in session.records]
        else:
            session.records = []
        return session


class SessionError(ResultsError):
    """A session file that cannot be read: the message names the file and why."""


def saved_session(results: str | Path, digest: str | None = None) -> tuple[Session | None, str]:
    """The session saved beside `results` when it belongs to them, else (None, why not: "" when there is none).

    It belongs when its source_sha256 is the SHA-256 of the results file now; a session that fails its checks
    (session_schema), was made from other records (another run, or records appended since) or has no hash is
    not used, and the reason says which. `digest`: records.file_digest(results), when already computed."""
    from effprof.store.records import file_digest

    path = session_path(results)
    if not os.path.lexists(path):
        return None, ""
    try:
        session = Session.load(path, records=False)  # the records are the results file's own
    except SessionError as e:
        return None, str(e)
    if session.source_sha256 is None or session.source_sha256 != (digest or file_digest(results)):
        return None, (f"session file {str(path)!r} was made from other records than {str(results)!r} "
                      "(its content hash differs: another run, or records added since)")
    return session, ""


def session_path(results: str | Path) -> Path:
    """Where a results file's session lives: results.jsonl -> results.session.json."""
    results = Path(results)
    return results.with_name(results.stem + ".session.json")


def analyse(records: Iterable[dict[str, Any]] | pd.DataFrame, baseline: Iterable[dict[str, Any]] | pd.DataFrame | None = None, *,
            patterns: list[dict[str, Any]] | None = None, fits: pd.DataFrame | None = None,
            title: str = "effprof report", command: str = "", hardware: Any = None) -> Session:
    """Fits, verdicts, crossovers, complexity, baseline diff and noise of `records`, computed once.

    `patterns`: attention-pattern data measured beside the records (effprof.measure.patterns), kept as is.
    `fits`: fits already computed for these records (effprof.analyse.fit.fit_frame), so they are not refitted.
    `hardware`: an effprof.hardware.registry.Hardware to project every record onto (projected_time_s, a roofline
    lower bound; effprof.hardware.project), or None.
    """
    records = _as_records(records)
    projection = None
    if hardware is not None:
        from effprof.hardware.project import ASSUMPTIONS, project_records
        from effprof.hardware.registry import describe

        records, notes = project_records(records, hardware)
        projection = {"name": hardware.name, "title": hardware.title, "figures": describe(hardware), "assumptions": ASSUMPTIONS,
                      "notes": notes}
    frame = _frame_of(records)
    fitted = scaling_fits(frame, fits)
    old = _frame_of(_as_records(baseline)) if baseline is not None else None
    return Session(
        records=records,
        fits=json_ready(fitted.to_dict("records")),
        crossovers=json_ready(crossovers(frame)),
        complexity=json_ready(complexity_rows(frame, fitted)),
        baseline=json_ready(baseline_diff(frame, old).to_dict("records")) if old is not None else None,
        patterns=json_ready(patterns) if patterns is not None else None,
        noise=noise_summary(frame),
        axis=swept_axis(ok_rows(frame)),
        title=title,
        command=command,
        hardware=projection,
        module_fits=json_ready(module_fits(frame)),
    )


def module_fits(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Per-submodule exponents of the records measured with --breakdown (analyse.fit_breakdown), each row's `module`
    its path or "(whole)", sorted by mechanism, mode, metric and path; [] where no record has a breakdown."""
    if "breakdown" not in frame.columns:
        return []
    measured = frame[frame["breakdown"].map(lambda b: isinstance(b, dict) and len(b) > 0)]
    if measured.empty:
        return []
    from effprof.analyse.fit_breakdown import fit_breakdown

    rows = sorted(fit_breakdown(measured), key=lambda r: (r["mechanism"], r["mode"], r["metric"], r["path"]))
    return [{**row, "module": row["path"] or "(whole)"} for row in rows]


def _frame_of(records: list[dict[str, Any]] | FrameRecords) -> pd.DataFrame:
    """The records as a DataFrame: a FrameRecords' own frame (no round trip through dicts), else to_frame."""
    return records.frame if isinstance(records, FrameRecords) else to_frame(records)


def _as_records(records: Iterable[dict[str, Any]] | pd.DataFrame) -> list[dict[str, Any]] | FrameRecords:
    """Records in the current schema, JSON-ready. A DataFrame (records.read_frame: read, upgraded and validated) is
    kept as it is, its rows made into records only when they are read (FrameRecords)."""
    if isinstance(records, pd.DataFrame):
        if "schema" in records.columns and records["schema"].eq(SCHEMA_VERSION).all():
            return FrameRecords(records)
        records = [{k: v for k, v in row.items() if not is_missing(v)} for row in records.to_dict("records")]  # older schemas
    return [json_ready(upgrade(r)) for r in records]


class FrameRecords(Sequence):
    """Session.records of a session analysed from a DataFrame: each row is its record (the fields it has: a NaN
    is a field its record lacked) when read, so 300k records are held as columns, never all as dicts."""

    CHUNK = 4096

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame

    def __len__(self) -> int:
        return len(self.frame)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [_record(row) for row in self.frame.iloc[index].to_dict("records")]
        return _record(self.frame.iloc[[index]].to_dict("records")[0])

    def __iter__(self):
        for start in range(0, len(self.frame), self.CHUNK):
            yield from (_record(row) for row in self.frame.iloc[start:start + self.CHUNK].to_dict("records"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    def __repr__(self) -> str:
        return f"FrameRecords({len(self)} records)"


def _record(row: dict[str, Any]) -> dict[str, Any]:
    return json_ready({k: v for k, v in row.items() if not is_missing(v)})
