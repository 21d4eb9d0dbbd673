"""Scaling claims as CI checks: load them from TOML, measure, fit, judge, compare with a baseline.

A check file (or the same keys under [tool.effprof.check] in pyproject.toml; a standalone
file may also put them at the top level, `[[claims]]`):

    baseline = "old.jsonl"              # optional: results to compare with, point by point
    [tool.effprof.check.regression]     # optional: largest new/old ratio allowed per metric
    time = 1.10                         # (default with a baseline: flops = 1.0, peak_bytes = 1.05)
    flops = 1.0
    peak_bytes = 1.05

    [[tool.effprof.check.claims]]
    mechanism = "linear_attention"
    params = { d_model = 256, impl = "chunked" }   # optional config overrides
    mode = "forward"                    # optional, default forward
    axis = "seq_len"                    # a numeric config key
    values = [256, 512, 1024, 2048]     # at least three distinct sizes
    metric = "flops"                    # flops, time, peak_bytes, activation_bytes, state_bytes, params
    exponent = 1.0                      # the claim: metric ∝ axis^exponent · log(axis)^log_power
    tolerance = 0.1                     # optional, default effprof.fit's for the metric
    log_power = 0                       # optional
    name = "linear attention is linear" # optional label

Verdict: the points are measured with only what the metric needs, fitted with
effprof.fit.fit_frame judging the check's own claim (not the spec's), so the rule is
fit's: pass when exponent lies in [ci_low − tolerance, ci_high + tolerance] of the raw
or of the leading exponent. A check whose points fail to measure fails.

Regression against a baseline (same mechanism, mode and full resolved config): a metric
regresses when new > ratio · old. Time is noisy, so a slowdown is flagged only when it
also exceeds the noise band: new − old > IQR_new + IQR_old (the two medians' spreads
added), i.e. only a slowdown beyond both the allowance and the measured noise fails.
"""

from __future__ import annotations

import math
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from effprof.config import KEYS, ConfigError, resolve_config
from effprof.fit import METRICS
from effprof.records import point_identity

METRIC_NAMES = tuple(METRICS)
DEFAULT_REGRESSION = {"flops": 1.0, "peak_bytes": 1.05}
CLAIM_KEYS = ("mechanism", "params", "mode", "axis", "values", "metric", "exponent", "tolerance", "log_power", "name")
REQUIRED_KEYS = ("mechanism", "axis", "values", "metric", "exponent")
SECTION_KEYS = ("claims", "baseline", "regression")
HOW_TO_ADD = ('add a [[tool.effprof.check.claims]] table, e.g.  mechanism = "linear_attention"  axis = "seq_len"  '
              'values = [256, 512, 1024]  metric = "flops"  exponent = 1.0')


class CheckFileError(ConfigError):
    """A bad check file or check: the message names the file, line and key."""


class _Bad(Exception):
    def __init__(self, key: str | None, message: str):
        super().__init__(message)
        self.key, self.message = key, message


@dataclass
class Check:
    """One claim to verify: `metric` ∝ `axis`^`exponent` for `mechanism` in `mode` at `params`."""

    mechanism: str
    axis: str
    values: list[float | int]
    metric: str
    exponent: float
    tolerance: float
    mode: str = "forward"
    params: dict[str, Any] = field(default_factory=dict)
    log_power: float = 0.0
    name: str = ""
    file: str | None = None
    line: int | None = None
    points: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list, repr=False)

    @property
    def variant(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.params.items())

    @property
    def claim(self) -> str:
        log = f"·log({self.axis})^{self.log_power:g}" if self.log_power else ""
        return f"{self.metric} ∝ {self.axis}^{self.exponent:g}{log}"

    @property
    def label(self) -> str:
        where = " ".join(p for p in (self.mechanism, self.mode, self.variant) if p)
        return f"{self.name} ({where}: {self.claim})" if self.name else f"{where}: {self.claim}"

    @property
    def source(self) -> str:
        return f"{self.file}:{self.line}" if self.file else ""


@dataclass
class CheckSuite:
    checks: list[Check]
    path: str | None = None
    baseline: list[dict[str, Any]] | None = None
    regression: dict[str, float] = field(default_factory=dict)


@dataclass
class CheckResult:
    check: Check
    verdict: str  # pass or fail
    fit: dict[str, Any] | None  # the fit row (effprof.fit.FIT_COLUMNS)
    error: str = ""  # why nothing could be fitted
    regressions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list, repr=False)
    seconds: float = 0.0

    @property
    def message(self) -> str:
        """One line: the check, what was measured and what was claimed."""
        c = self.check
        if self.error:
            text = f"{c.label}: {self.error}"
        else:
            text = f"{c.label}: measured {measured_text(self.fit)}, claimed {c.exponent:g} ± {c.tolerance:g}"
        if self.regressions:
            text += "; regressed against the baseline: " + "; ".join(self.regressions)
        return text

    def to_dict(self) -> dict[str, Any]:
        c, f = self.check, self.fit or {}
        return {
            "name": c.name, "mechanism": c.mechanism, "mode": c.mode, "variant": c.variant, "params": c.params,
            "metric": c.metric, "axis": c.axis, "values": c.values, "claimed": c.exponent, "log_power": c.log_power,
            "tolerance": c.tolerance, **{k: f.get(k) for k in ("exponent", "ci_low", "ci_high", "r2", "leading_exponent",
                                                           "leading_ci_low", "leading_ci_high", "local")},
            "verdict": self.verdict, "message": self.message, "error": self.error, "regressions": self.regressions,
            "source": c.source, "seconds": self.seconds,
        }


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def measured_text(fit: dict[str, Any] | None) -> str:
    """'1.803 [1.750, 1.856], leading 2.000 [1.990, 2.010]'."""
    leading = leading_text(fit)
    return exponent_text(fit) + (f", leading {leading}" if leading else "")


def exponent_text(fit: dict[str, Any] | None) -> str:
    return _with_ci(fit or {}, "exponent", "ci_low", "ci_high") or "–"


def leading_text(fit: dict[str, Any] | None) -> str:
    return _with_ci(fit or {}, "leading_exponent", "leading_ci_low", "leading_ci_high")


def _with_ci(fit: dict[str, Any], value: str, low: str, high: str) -> str:
    if not _number(fit.get(value)):
        return ""
    text = f"{fit[value]:.3f}"
    if _number(fit.get(low)) and _number(fit.get(high)):
        text += f" [{fit[low]:.3f}, {fit[high]:.3f}]"
    return text


# ---- building and validating checks ------------------------------------------------------


def make_check(mechanism: str, axis: str, values: list, metric: str, exponent: float, tolerance: float | None = None,
               mode: str = "forward", params: dict[str, Any] | None = None, log_power: float = 0.0, name: str = "") -> Check:
    """A validated Check from Python values; ConfigError names the bad argument."""
    entry = {"mechanism": mechanism, "axis": axis, "values": values, "metric": metric, "exponent": exponent,
             "mode": mode, "params": params or {}, "log_power": log_power, "name": name}
    if tolerance is not None:
        entry["tolerance"] = tolerance
    try:
        return _check_from(entry)
    except _Bad as e:
        raise ConfigError(f"{e.key}: {e.message}" if e.key else e.message) from None


def _check_from(entry: Any) -> Check:
    """Validate one claims entry (a dict from TOML or Python) and plan its points; raises _Bad."""
    from effprof.api import plan
    from effprof.fit import NUMERIC_AXES
    from effprof.fit import tolerance as default_tolerance
    from effprof.registry import MODES, get_spec, list_mechanisms

    if not isinstance(entry, dict):
        raise _Bad(None, f"a claim must be a table of keys, not {type(entry).__name__}")
    for key in entry:
        if key not in CLAIM_KEYS:
            raise _Bad(key, f"unknown key {key!r}; accepted: {', '.join(CLAIM_KEYS)}")
    for key in REQUIRED_KEYS:
        if key not in entry:
            raise _Bad(key, f"missing key {key!r}; a claim needs {', '.join(REQUIRED_KEYS)}")
    mechanism = _typed(entry, "mechanism", str, "a mechanism name")
    if mechanism not in list_mechanisms():
        raise _Bad("mechanism", f"unknown mechanism {mechanism!r}; accepted: {', '.join(list_mechanisms())}")
    spec = get_spec(mechanism)
    mode = _typed(entry, "mode", str, "a mode name", "forward")
    if mode not in MODES:
        raise _Bad("mode", f"mode {mode!r} is not a mode; accepted: {', '.join(MODES)}")
    if mode not in spec.modes:
        raise _Bad("mode", f"mode {mode!r} is not available for {mechanism}; accepted: {', '.join(spec.modes)}")
    metric = _typed(entry, "metric", str, "a metric name")
    if metric not in METRIC_NAMES:
        raise _Bad("metric", f"metric {metric!r} is not a metric; accepted: {', '.join(METRIC_NAMES)}")
    axis = _typed(entry, "axis", str, "a config key")
    if axis not in NUMERIC_AXES:
        raise _Bad("axis", f"axis {axis!r} is not a numeric config key; accepted: {', '.join(NUMERIC_AXES)}")
    values = entry["values"]
    if not isinstance(values, list) or not all(_number(v) and v > 0 for v in values):
        raise _Bad("values", f"values must be a list of positive numbers, e.g. [256, 512, 1024]; got {values!r}")
    if len(set(values)) < 3:
        raise _Bad("values", f"values needs at least three distinct sizes to fit an exponent; got {values!r}")
    exponent = _real(entry, "exponent")
    tolerance = _real(entry, "tolerance", default_tolerance(metric))
    log_power = _real(entry, "log_power", 0.0)
    if tolerance < 0:
        raise _Bad("tolerance", f"tolerance must be >= 0; got {tolerance!r}")
    params = entry.get("params", {})
    if not isinstance(params, dict):
        raise _Bad("params", f"params must be a table of config keys, e.g. {{ d_model = 64 }}; got {params!r}")
    for key, value in params.items():
        if key not in KEYS:
            raise _Bad("params", f"{key!r} is not a config key; accepted: {', '.join(KEYS)}")
        if key == axis:
            raise _Bad("params", f"params sets {axis}, the axis; give its sizes in values only")
        if not isinstance(value, (int, float, str)) or isinstance(value, bool):
            raise _Bad("params", f"{key} = {value!r} is not a number or a string")
    try:
        resolve_config(spec, params)
    except ConfigError as e:
        raise _Bad("params", str(e)) from None
    try:
        points = plan([mechanism], {axis: list(values)}, [mode], params)
    except ConfigError as e:
        raise _Bad("values", str(e)) from None
    return Check(mechanism=mechanism, axis=axis, values=list(values), metric=metric, exponent=exponent,
                 tolerance=tolerance, mode=mode, params=dict(params), log_power=log_power,
                 name=_typed(entry, "name", str, "a label", ""), points=points)


def _typed(entry: dict[str, Any], key: str, type_: type, what: str, default: Any = None) -> Any:
    value = entry.get(key, default)
    if not isinstance(value, type_):
        raise _Bad(key, f"{key} must be {what} (a {'string' if type_ is str else type_.__name__}); got {value!r}")
    return value


def _real(entry: dict[str, Any], key: str, default: float | None = None) -> float:
    value = entry.get(key, default)
    if not _number(value):
        raise _Bad(key, f"{key} must be a number; got {value!r}")
    return float(value)


# ---- loading check files -----------------------------------------------------------------


def load_checks(path: str | Path | None = None) -> CheckSuite:
    """The checks of a TOML file; by default [tool.effprof.check] of ./pyproject.toml."""
    path = Path(path) if path is not None else Path("pyproject.toml")
    if not path.exists():
        hint = "; give a check file (effprof check FILE) or run where pyproject.toml is" if path.name == "pyproject.toml" else ""
        raise CheckFileError(f"check file {str(path)!r} does not exist{hint}")
    if path.is_dir():
        raise CheckFileError(f"check file {str(path)!r} is a directory; give a TOML file")
    tomllib = _tomllib()
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError) as e:
        raise CheckFileError(f"check file {str(path)!r} cannot be read: {e}") from None
    except tomllib.TOMLDecodeError as e:
        line = re.search(r"line (\d+)", str(e))
        raise CheckFileError(f"{path}:{line.group(1) if line else 1}: not valid TOML: {e}") from None
    section, prefix = _section(data)
    lines = _Locator(text, prefix)
    if section is None:
        where = "" if path.name == "pyproject.toml" else " (or top-level [[claims]])"
        raise CheckFileError(f"{path}: no [tool.effprof.check] section{where} with claims to check; {HOW_TO_ADD}")
    if not isinstance(section, dict):
        raise CheckFileError(f"{path}:{lines.section_key('check')}: tool.effprof.check must be a table; {HOW_TO_ADD}")

    def bad(line: int, key: str | None, message: str) -> CheckFileError:
        return CheckFileError(f"{path}:{line}: " + (f"key {key!r}: " if key else "") + message)

    for key in section:
        if key not in SECTION_KEYS:
            raise bad(lines.section_key(key), key, f"unknown key {key!r}; accepted: {', '.join(SECTION_KEYS)}")
    claims = section.get("claims")
    if not isinstance(claims, list) or not claims:
        raise bad(lines.section_key("claims"), "claims", f"no claims to check; {HOW_TO_ADD}")
    checks = []
    for index, entry in enumerate(claims):
        start = lines.entry(index)
        try:
            check = _check_from(entry)
        except _Bad as e:
            label = f"claim {index + 1}" + (f" ({entry['mechanism']})" if isinstance(entry, dict) and isinstance(entry.get("mechanism"), str) else "")
            line = lines.key(index, e.key) if e.key else start
            raise bad(line, e.key, f"{label}: {e.message}") from None
        check.file, check.line = str(path), start
        checks.append(check)
    regression = section.get("regression", DEFAULT_REGRESSION if "baseline" in section else {})
    if not isinstance(regression, dict):
        raise bad(lines.section_key("regression"), "regression", "regression must be a table of metric = ratio, e.g. flops = 1.0")
    for metric, ratio in regression.items():
        if metric not in METRIC_NAMES:
            raise bad(lines.section_key("regression", metric), metric, f"{metric!r} is not a metric; accepted: {', '.join(METRIC_NAMES)}")
        if not _number(ratio) or ratio <= 0:
            raise bad(lines.section_key("regression", metric), metric, f"the allowed ratio new/old must be a positive number, e.g. 1.05; got {ratio!r}")
    baseline = None
    if "baseline" in section:
        baseline = _load_baseline(section["baseline"], path, lambda message: bad(lines.section_key("baseline"), "baseline", message))
    return CheckSuite(checks, str(path), baseline, dict(regression) if baseline is not None else {})


def _tomllib():
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise CheckFileError("reading check files on Python 3.10 needs tomli: pip install tomli") from None
    return tomllib


def _section(data: dict[str, Any]) -> tuple[Any, str]:
    """(the check section, its TOML prefix): [tool.effprof.check], else the top level of a file with claims."""
    tool = data.get("tool")
    if isinstance(tool, dict) and isinstance(tool.get("effprof"), dict) and "check" in tool["effprof"]:
        return tool["effprof"]["check"], "tool.effprof.check"
    if "claims" in data:
        return data, ""
    return None, "tool.effprof.check"


def _load_baseline(value: Any, path: Path, bad: Callable[[str], CheckFileError]) -> list[dict[str, Any]]:
    import warnings

    from effprof.records import ResultsError, read

    if not isinstance(value, str) or not value:
        raise bad(f"baseline must be the path of a results file (JSON Lines); got {value!r}")
    file = path.parent / value
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a truncated line of an old results file does not void the rest
            return read(file)
    except ResultsError as e:
        raise bad(f"{e} (a path relative to {str(path)!r}'s folder)") from None


class _Locator:
    """Line numbers of tables and keys in a TOML text (tomllib keeps none).

    The Nth claims entry starts at the Nth [[<prefix>.claims]] header; its keys are the
    `key =` lines up to the next header, or a [<prefix>.claims.key] sub-table before the
    next entry. Inline forms (claims = [{...}]) fall back to the line of `claims`.
    """

    HEADER = re.compile(r"^\s*(\[\[?)([^\]]+)\]")

    def __init__(self, text: str, prefix: str):
        self.lines = text.splitlines()
        self.prefix = prefix
        self.claims = f"{prefix}.claims" if prefix else "claims"
        self.headers = [(i, re.sub(r"[\s\"']", "", m.group(2)), m.group(1) == "[[")
                        for i, line in enumerate(self.lines) if (m := self.HEADER.match(line))]
        self.entries = [i for i, name, array in self.headers if array and name == self.claims]

    def _next_header(self, after: int) -> int:
        return next((i for i, _, _ in self.headers if i > after), len(self.lines))

    def _assignment(self, key: str, start: int) -> int | None:
        """The `key = ...` (or dotted `key.x = ...`) line between `start` and the next header."""
        pattern = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*[.=]")
        return next((i for i in range(start, self._next_header(start - 1)) if pattern.match(self.lines[i])), None)

    def _table(self, name: str, start: int = 0, end: int | None = None) -> int | None:
        end = len(self.lines) if end is None else end
        return next((i for i, header, _ in self.headers if header == name and start <= i < end), None)

    def section_key(self, key: str, subkey: str | None = None) -> int:
        """Line (1-based) of a key of the check section, or of a key inside that key's table."""
        table = self.prefix
        own = self._table(table) if table else -1
        found = self._assignment(key, own + 1) if own is not None else None
        if found is None:
            found = self._table(f"{table}.{key}" if table else key)
            if found is not None and subkey is not None:
                found = self._assignment(subkey, found + 1) or found
        if found is None:
            found = next((i for i, name, _ in self.headers if name == table or name.startswith(table + ".")), 0) if table else 0
        return found + 1

    def entry(self, index: int) -> int:
        if index < len(self.entries):
            return self.entries[index] + 1
        return self.section_key("claims")

    def key(self, index: int, key: str) -> int:
        if index >= len(self.entries):
            return self.entry(index)
        start = self.entries[index]
        end = self.entries[index + 1] if index + 1 < len(self.entries) else len(self.lines)
        found = self._assignment(key, start + 1)
        if found is None:
            found = self._table(f"{self.claims}.{key}", start, end)
        return (found if found is not None else start) + 1


# ---- running checks ----------------------------------------------------------------------


def needed_options(metrics: set[str], threads: int = 0, max_time: float = 0.5):
    """Measure only what the metrics need: no fvcore, no timing unless time is judged."""
    from effprof.measure.harness import Options

    return Options(threads=threads, max_time_s=max_time, count_flops="flops" in metrics, fvcore=False,
                   memory=bool(metrics & {"peak_bytes", "activation_bytes"}), timing="time" in metrics)


def run_check(check: Check, baseline: list[dict[str, Any]] | None = None, regression: dict[str, float] | None = None,
              threads: int = 0, max_time: float = 0.5, output: str | None = None,
              on_record: Callable[[dict[str, Any]], None] | None = None, executor=None) -> CheckResult:
    """Measure a check's points (on `executor`, default this process), fit, judge its claim, and compare with the baseline."""
    from effprof.api import run_points

    regression = regression or {}
    started = time.perf_counter()
    options = needed_options({check.metric, *(regression if baseline is not None else ())}, threads, max_time)
    records = run_points(check.points, options, output, on_record, executor=executor)
    result = judge(check, records)
    if baseline is not None:
        result.regressions, result.notes = compare_baseline(records, baseline, regression)
        if result.regressions:
            result.verdict = "fail"
    result.seconds = time.perf_counter() - started
    return result


def run_suite(suite: CheckSuite, threads: int = 0, max_time: float = 0.5, output: str | None = None,
              on_record: Callable[[dict[str, Any]], None] | None = None, executor=None) -> list[CheckResult]:
    return [run_check(c, suite.baseline, suite.regression, threads, max_time, output, on_record, executor) for c in suite.checks]


def judge(check: Check, records: list[dict[str, Any]]) -> CheckResult:
    """Fit the records of one check and judge the check's own claim (effprof.fit's rule)."""
    from effprof.fit import fit_frame
    from effprof.records import to_frame

    frame = to_frame(records)
    # the check's claim replaces the spec's in the frame fitted: fit_frame judges it, divides out its
    # log factor, and fits a constant metric (e.g. state_bytes ∝ n⁰) even where the spec claims nothing
    frame["claims"] = [[[check.metric, check.axis, check.exponent, check.log_power]] for _ in range(len(frame))]
    fits = fit_frame(frame, tolerances={check.metric: check.tolerance})
    rows = fits[(fits["metric"] == check.metric) & (fits["axis"] == check.axis)]
    if not rows.empty:
        row = rows.iloc[0].to_dict()
        return CheckResult(check, "pass" if row["verdict"] == "pass" else "fail", row, records=records)
    failed = [r for r in records if r.get("status") != "ok"]
    if failed:
        error = f"{len(failed)} of {len(records)} points did not measure: {failed[0]['status']}: {failed[0].get('error', '')}"
    else:
        column = METRICS[check.metric]
        error = f"no fit: {column} was not measured at three or more sizes with a positive value"
    return CheckResult(check, "fail", None, error=error, records=records)


def compare_baseline(records: list[dict[str, Any]], baseline: list[dict[str, Any]],
                     regression: dict[str, float]) -> tuple[list[str], list[str]]:
    """(regressions, notes) of new records against the baseline's records of the same points."""
    from effprof.render.series import human

    old = {}
    for record in baseline:
        if record.get("status") == "ok":
            old[point_identity(record)] = record  # the latest record of a point wins
    regressions, notes, matched = [], [], 0
    for record in records:
        before = old.get(point_identity(record))
        if record.get("status") != "ok" or before is None:
            continue
        matched += 1
        for metric, ratio in regression.items():
            column = METRICS[metric]
            new, previous = record.get(column), before.get(column)
            if not (_number(new) and _number(previous)):
                continue
            if not _regressed(metric, new, previous, ratio, record.get("time_iqr_s"), before.get("time_iqr_s")):
                continue
            ratio_now = new / previous if previous > 0 else math.inf
            change = f"+{(ratio_now - 1) * 100:.3g}%" if ratio_now < 2 else f"×{ratio_now:.3g}"
            regressions.append(f"{_point_text(record)} {metric} {human(new, column)} vs {human(previous, column)} "
                               f"({change}, allowed ×{ratio:g})")
    if records and not matched:
        notes.append("no point of this check is in the baseline: nothing compared")
    return regressions, notes


def _regressed(metric: str, new: float, old: float, ratio: float, iqr_new: Any, iqr_old: Any) -> bool:
    if new <= ratio * old * (1 + 1e-9):
        return False
    if metric == "time":
        noise = sum(v for v in (iqr_new, iqr_old) if _number(v))
        return new - old > noise
    return True


def _point_text(record: dict[str, Any]) -> str:
    return " ".join(f"{k}={record[k]}" for k in ("seq_len", "d_model", "batch") if k in record)


# ---- reporting for CI --------------------------------------------------------------------


def junit_xml(results: list[CheckResult]) -> str:
    """JUnit XML (one testcase per check; a failure element carries the message) for CI systems."""
    failures = sum(r.verdict != "pass" for r in results)
    total = f"{sum(r.seconds for r in results):.3f}"
    suites = ET.Element("testsuites", name="effprof check", tests=str(len(results)), failures=str(failures), errors="0", time=total)
    suite = ET.SubElement(suites, "testsuite", name="effprof check", tests=str(len(results)), failures=str(failures),
                          errors="0", skipped="0", time=total)
    for r in results:
        attributes = {"classname": f"effprof.check.{r.check.mechanism}", "name": r.check.label, "time": f"{r.seconds:.3f}"}
        if r.check.file:
            attributes.update(file=r.check.file, line=str(r.check.line))
        case = ET.SubElement(suite, "testcase", attributes)
        if r.verdict != "pass":
            failure = ET.SubElement(case, "failure", message=r.message, type="ClaimFailed" if not r.regressions else "Regression")
            failure.text = r.message + (f"\nlocal slopes: {r.fit['local']}" if r.fit else "") + (f"\ndefined at {r.check.source}" if r.check.file else "")
        elif r.notes:
            ET.SubElement(case, "system-out").text = "\n".join(r.notes)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def github_annotations(results: list[CheckResult]) -> list[str]:
    """`::error` workflow commands for the failed checks (GitHub Actions shows them on the run and the diff)."""
    lines = []
    for r in results:
        if r.verdict == "pass":
            continue
        where = f",file={_escape(r.check.file, True)},line={r.check.line}" if r.check.file else ""
        lines.append(f"::error title=effprof check{where}::{_escape(r.message)}")
    return lines


def _escape(text: str, property_: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if property_ else text
