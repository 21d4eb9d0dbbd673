"""Check files and checks: the claims to verify, loaded from TOML or built in Python, validated.

A check file (or the same keys under [tool.effprof.check] in pyproject.toml; a standalone
file may also put them at the top level, `[[claims]]`):

    baseline = "old.jsonl"              # optional: results to compare with, point by point
    [tool.effprof.check.regression]     # optional: largest new/old ratio allowed per metric
    time = 1.10                         # (default with a baseline: flops = 1.0, peak_bytes = 1.05)
    flops = 1.0
    peak_bytes = 1.05

    [[tool.effprof.check.claims]]
    mechanism = "linear_attention"      # a registered mechanism, or your own module: "pkg.mod:factory", "hf:llama.attention"
    params = { d_model = 256, impl = "chunked" }   # optional config overrides (a plugin's or factory's own keys too)
    mode = "forward"                    # optional, default forward
    axis = "seq_len"                    # a numeric config key
    values = [256, 512, 1024, 2048]     # at least three distinct sizes
    metric = "flops"                    # flops, time, peak_bytes, activation_bytes, state_bytes, params
    exponent = 1.0                      # the claim: metric ∝ axis^exponent · log(axis)^log_power
    tolerance = 0.1                     # optional, default effprof.analyse.fit's for the metric
    log_power = 0                       # optional
    name = "linear attention is linear" # optional label
    allow_inconclusive = false          # optional: true lets an inconclusive (or uncertain: noisy) verdict pass the gate

    [tool.effprof.check.labels]         # optional: how the table and messages name a mechanism (as --label)
    linear_attention = "Linear attention (ours)"
    "mylayers:build_gated_conv" = "Gated conv (ours)"
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from effprof.check.baseline import DEFAULT_REGRESSION, load_baseline
from effprof.check.locate import Locator
from effprof.config import KEYS, ConfigError, resolve_config
from effprof.store.metrics import CLAIMABLE
from effprof.store.records import is_number

METRIC_NAMES = tuple(CLAIMABLE)
CLAIM_KEYS = ("mechanism", "params", "mode", "axis", "values", "metric", "exponent", "tolerance", "log_power", "name",
              "allow_inconclusive")
REQUIRED_KEYS = ("mechanism", "axis", "values", "metric", "exponent")
SECTION_KEYS = ("claims", "baseline", "regression", "labels")
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
    allow_inconclusive: bool = False
    file: str | None = None
    line: int | None = None
    shown_as: str = ""  # the mechanism's label from the check file's [labels], shown in place of its name
    points: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list, repr=False)

    @property
    def variant(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.params.items())

    @property
    def claim(self) -> str:
        log = f"·log({self.axis})^{self.log_power:g}" if self.log_power else ""
        return f"{self.metric} ∝ {self.axis}^{self.exponent:g}{log}"

    @property
    def shown(self) -> str:
        """The mechanism as the table names it: its label, or its name."""
        return self.shown_as or self.mechanism

    @property
    def label(self) -> str:
        where = " ".join(p for p in (self.shown, self.mode, self.variant) if p)
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


def make_check(mechanism: str, axis: str, values: list, metric: str, exponent: float, tolerance: float | None = None,
               mode: str = "forward", params: dict[str, Any] | None = None, log_power: float = 0.0, name: str = "",
               allow_inconclusive: bool = False) -> Check:
    """A validated Check from Python values; ConfigError names the bad argument."""
    entry = {"mechanism": mechanism, "axis": axis, "values": values, "metric": metric, "exponent": exponent,
             "mode": mode, "params": params or {}, "log_power": log_power, "name": name,
             "allow_inconclusive": allow_inconclusive}
    if tolerance is not None:
        entry["tolerance"] = tolerance
    try:
        return _check_from(entry)
    except _Bad as e:
        raise ConfigError(f"{e.key}: {e.message}" if e.key else e.message) from None


def _check_from(entry: Any) -> Check:
    """Validate one claims entry (a dict from TOML or Python) and plan its points; raises _Bad."""
    from effprof.analyse.fit import NUMERIC_AXES
    from effprof.modules import is_module_target, module_spec
    from effprof.registry import MODES, get_spec, list_mechanisms, unknown_mechanism
    from effprof.runner import plan
    from effprof.store.metrics import tolerance as default_tolerance
    from effprof.suggest import accepted

    if not isinstance(entry, dict):
        raise _Bad(None, f"a claim must be a table of keys, not {type(entry).__name__}")
    for key in entry:
        if key not in CLAIM_KEYS:
            raise _Bad(key, f"unknown key {key!r}; accepted: {', '.join(CLAIM_KEYS)}")
    for key in REQUIRED_KEYS:
        if key not in entry:
            raise _Bad(key, f"missing key {key!r}; a claim needs {', '.join(REQUIRED_KEYS)}")
    mechanism = _typed(entry, "mechanism", str, "a mechanism name, pkg.module:factory or hf:model_type.layer")
    raw_params = entry.get("params", {})
    if is_module_target(mechanism):  # the user's own module, as --module takes it: probed once, at small sizes
        try:
            spec = module_spec(mechanism, (), dict(raw_params) if isinstance(raw_params, dict) else {})
        except ConfigError as e:
            raise _Bad("mechanism", str(e)) from None
    elif mechanism not in list_mechanisms():
        raise _Bad("mechanism", unknown_mechanism(mechanism) + "; or a module: pkg.module:factory, hf:model_type.layer")
    else:
        spec = get_spec(mechanism)
    mode = _typed(entry, "mode", str, "a mode name", "forward")
    if mode not in MODES:
        raise _Bad("mode", f"mode {mode!r} is not a mode" + accepted(mode, MODES))
    if mode not in spec.modes:
        raise _Bad("mode", f"mode {mode!r} is not available for {mechanism}; accepted: {', '.join(spec.modes)}")
    metric = _typed(entry, "metric", str, "a metric name")
    if metric not in METRIC_NAMES:
        raise _Bad("metric", f"metric {metric!r} is not a metric" + accepted(metric, METRIC_NAMES))
    axis = _typed(entry, "axis", str, "a config key")
    if axis not in NUMERIC_AXES:
        if axis in spec.defaults and axis not in KEYS:  # a plugin's or factory's own key: settable, not sweepable
            raise _Bad("axis", f"axis {axis!r} is {mechanism}'s own key, not a declared config key, so it cannot be swept; "
                               f"declare it (effprof.config.declare_key({axis!r}, int, \"what it counts\")) or pick a declared "
                               f"axis: {', '.join(NUMERIC_AXES)}")
        raise _Bad("axis", f"axis {axis!r} is not a numeric config key" + accepted(axis, NUMERIC_AXES))
    values = _sizes(entry["values"])
    if len(set(values)) < 3:
        raise _Bad("values", f"values needs at least three distinct sizes to fit an exponent; got {values!r}")
    exponent = _real(entry, "exponent")
    tolerance = _real(entry, "tolerance", default_tolerance(metric))
    log_power = _real(entry, "log_power", 0.0)
    if log_power and min(values) <= 1:
        raise _Bad("values", f"log_power = {log_power:g} divides by log({axis})^{log_power:g}, which is 0 or negative at "
                             f"{axis} = {_text(min(values))}; give values above 1 (got {values!r})")
    allow_inconclusive = entry.get("allow_inconclusive", False)
    if not isinstance(allow_inconclusive, bool):
        raise _Bad("allow_inconclusive", f"allow_inconclusive must be true or false; got {allow_inconclusive!r}")
    if tolerance < 0:
        raise _Bad("tolerance", f"tolerance must be >= 0; got {tolerance!r}")
    params = entry.get("params", {})
    if not isinstance(params, dict):
        raise _Bad("params", f"params must be a table of config keys, e.g. {{ d_model = 64 }}; got {params!r}")
    params = {k: v.item() if type(v).__module__ == "numpy" and hasattr(v, "item") else v for k, v in params.items()}  # numpy scalars
    for key, value in params.items():
        if key not in KEYS and key not in spec.defaults:  # a plugin's own keys (its defaults) need no declare_key
            own = [*KEYS, *(k for k in spec.defaults if k not in KEYS)]
            raise _Bad("params", f"{key!r} is not a config key of {mechanism}" + accepted(key, own))
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
                 name=_typed(entry, "name", str, "a label", ""), allow_inconclusive=allow_inconclusive,
                 points=points)


def _sizes(values: Any) -> list[int | float]:
    """A list (or tuple, or numpy array) of positive finite numbers, numpy's included, as Python numbers; _Bad otherwise."""
    import numbers

    if hasattr(values, "tolist") and not isinstance(values, (str, bytes)):
        values = values.tolist()  # a numpy array
    ok = isinstance(values, (list, tuple)) and all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) and is_number(float(v)) and v > 0 for v in values)
    if not ok:
        raise _Bad("values", f"values must be a list of positive numbers, e.g. [256, 512, 1024]; got {values!r}")
    return [int(v) if isinstance(v, numbers.Integral) else float(v) for v in values]


def _text(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _typed(entry: dict[str, Any], key: str, type_: type, what: str, default: Any = None) -> Any:
    value = entry.get(key, default)
    if not isinstance(value, type_):
        raise _Bad(key, f"{key} must be {what} (a {'string' if type_ is str else type_.__name__}); got {value!r}")
    return value


def _real(entry: dict[str, Any], key: str, default: float | None = None) -> float:
    value = entry.get(key, default)
    if not is_number(value):
        raise _Bad(key, f"{key} must be a number; got {value!r}")
    return float(value)


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
    except RecursionError:
        raise CheckFileError(f"check file {str(path)!r} is nested too deeply to read; give a plain TOML file of claims") from None
    except tomllib.TOMLDecodeError as e:
        line = re.search(r"line (\d+)", str(e))
        raise CheckFileError(f"{path}:{line.group(1) if line else 1}: not valid TOML: {e}") from None
    section, prefix = _section(data)
    lines = Locator(text, prefix)
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
    labels = section.get("labels", {})
    if not isinstance(labels, dict):
        raise bad(lines.section_key("labels"), "labels", 'labels must be a table of name = "text", e.g. linear_attention = "Linear attention (ours)"')
    named, shown = {c.mechanism for c in checks}, {}
    for name, text in labels.items():
        if name not in named:
            from effprof.suggest import accepted

            raise bad(lines.section_key("labels", name), name, f"label {name!r} names no mechanism of these claims" + accepted(name, sorted(named)))
        try:
            from effprof.render.labels import add_label

            add_label(shown, name, text, "label")  # checked and normalised by the --label rule
        except ConfigError as e:
            raise bad(lines.section_key("labels", name), name, str(e)) from None
    for check in checks:
        check.shown_as = shown.get(check.mechanism, "")
    regression = section.get("regression", DEFAULT_REGRESSION if "baseline" in section else {})
    if not isinstance(regression, dict):
        raise bad(lines.section_key("regression"), "regression", "regression must be a table of metric = ratio, e.g. flops = 1.0")
    for metric, ratio in regression.items():
        if metric not in METRIC_NAMES:
            raise bad(lines.section_key("regression", metric), metric, f"{metric!r} is not a metric; accepted: {', '.join(METRIC_NAMES)}")
        if not is_number(ratio) or ratio <= 0:
            raise bad(lines.section_key("regression", metric), metric, f"the allowed ratio new/old must be a positive number, e.g. 1.05; got {ratio!r}")
    baseline = None
    if "baseline" in section:
        baseline = load_baseline(section["baseline"], path, lambda message: bad(lines.section_key("baseline"), "baseline", message))
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


