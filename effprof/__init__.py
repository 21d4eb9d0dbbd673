"""effprof: profile and analyse the complexity of efficient sequence-model mechanisms.

    import effprof
    effprof.list_mechanisms()
    module = effprof.build("linear_attention", seq_len=1024, impl="chunked")
    record = effprof.profile("softmax_attention", mode="forward", seq_len=1024)
    frame = effprof.sweep(["softmax_attention", "linear_attention"], vary={"seq_len": [256, 512, 1024]})
    fits = effprof.fit(frame)
    effprof.report(frame, "reports/attention.html")
    effprof.project(frame, "h100-sxm")  # + projected_time_s: a roofline lower bound on that GPU, not a measurement

`hardware=` (a registry name such as "h100-sxm", or an effprof.hardware.registry.Hardware) on profile, sweep and
report adds the same projection.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import effprof.modules  # noqa: F401  (get_spec and build accept factory targets, pkg.mod:factory and hf:...)
from effprof.registry import build, get_spec, list_mechanisms
from effprof.version import __version__ as __version__  # one home: effprof/version.py

if TYPE_CHECKING:
    import pandas


def profile(target: Any, mode: str = "forward", *, max_time: float = 1.0, threads: int = 0, count_only: bool = False,
            breakdown: bool = False, depth: int | None = None, seed: int = 0, hardware: Any = None, options: Any = None,
            **config: Any) -> dict[str, Any]:
    """Measure one point and return its record.

    `target`: a registered mechanism's name, a module target ("pkg.mod:factory", "hf:llama"), an nn.Module
    instance (measured as it is; its config must match its shapes) or a factory (called with the config keys
    it names). `max_time`: seconds spent timing; `count_only`: count on fake tensors, nothing run or timed
    (any size); `breakdown`/`depth`: per-submodule figures; `hardware`: a name ("h100-sxm") or a Hardware, adding
    the record's roofline projection onto it (projected_*: a lower bound, not a measurement). The other keywords are
    config keys. `options`: an effprof.measure.harness.Options, in place of the keywords above (all of them).
    """
    from effprof.runner import options_from
    from effprof.runner import profile as _profile

    options = options_from(max_time, threads, count_only, breakdown, depth, seed) if options is None else options
    record = _profile(target, mode=mode, options=options, **config)
    return project([record], hardware)[0] if hardware is not None else record


def project(records: pandas.DataFrame | list[dict[str, Any]], hardware: Any, hardware_file: str | None = None):
    """Records (a frame or a list) with projected_time_s / projected_limit / projected_hardware added: a roofline
    lower bound on `hardware` from their counted FLOPs and bytes (effprof.hardware.project), not a measurement.
    `hardware`: a registry name ("h100-sxm"; a name from `hardware_file`, a TOML file) or a Hardware."""
    from effprof.hardware.project import project_records
    from effprof.hardware.user import find

    entry = find(hardware, hardware_file) if isinstance(hardware, str) else hardware
    if isinstance(records, list):
        return project_records(records, entry)[0]
    from effprof.store.records import to_frame

    rows = [{k: v for k, v in row.items() if not (isinstance(v, float) and v != v)} for row in records.to_dict("records")]
    return to_frame(project_records(rows, entry)[0])


def sweep(names: Any, vary: dict[str, list[Any]], mode: str | list[str] = "forward", *, max_time: float = 1.0,
          threads: int = 0, count_only: bool = False, breakdown: bool = False, depth: int | None = None, seed: int = 0,
          hardware: Any = None, options: Any = None, **config: Any) -> pandas.DataFrame:
    """Measure every combination of the `vary` values for each target; one row per point.

    `names`: one target or a list (names, module targets, nn.Module instances, factories; see `profile`).
    `executor="ray"` (with `address="auto"`, `"ray://host:port"` or none for a local Ray instance) runs the
    points as Ray tasks; `"process"` runs each in a worker subprocess; the default runs them here (the only
    place an instance or a factory object can run). `output=path` appends each record as it is measured.
    `options`: a measure.harness.Options, used as it is instead of the options above.
    """
    from effprof.runner import options_from
    from effprof.runner import sweep as _sweep

    options = options_from(max_time, threads, count_only, breakdown, depth, seed) if options is None else options
    frame = _sweep(names, vary=vary, mode=mode, options=options, **config)
    return project(frame, hardware) if hardware is not None else frame


def fit(frame: pandas.DataFrame | list[dict[str, Any]]) -> pandas.DataFrame:
    """Scaling exponents with CIs and claim verdicts for a frame (or list) of records, noise marked (`noisy_points`,
    `uncertain`): the rows `effprof fit` prints (analysis.scaling_fits)."""
    return _fit_records(frame)


def _fit_records(frame: Any) -> pandas.DataFrame:
    from effprof.analyse.session import scaling_fits

    return scaling_fits(_frame(frame))


def report(frame: pandas.DataFrame | list[dict[str, Any]], path: str, command: str = "", hardware: Any = None) -> str:
    """Write a self-contained HTML report of `frame` (or a list of records) to `path` (with `hardware`, projected onto it)."""
    from effprof.analyse.session import analyse
    from effprof.hardware.user import find
    from effprof.render import html

    if not isinstance(path, (str, os.PathLike)) or not str(path):
        from effprof.config import ConfigError

        raise ConfigError(f"path must be a file name, e.g. 'report.html'; got {path!r}")
    entry = find(hardware) if isinstance(hardware, str) else hardware
    return html.write(analyse(_frame(frame), command=command, hardware=entry), path)


def _frame(frame: Any) -> pandas.DataFrame:
    """A DataFrame of records, from one or from a list of record dicts (each checked as `effprof fit` checks a file's
    lines: effprof.store.records.validate_record); ConfigError names what is wrong."""
    import pandas as pd

    from effprof.config import ConfigError
    from effprof.store.records import ResultsError, json_ready, to_frame, upgrade, validate_record

    if isinstance(frame, pd.DataFrame):
        return frame
    if not isinstance(frame, (list, tuple)):
        raise ConfigError(f"expected a DataFrame of records (effprof.sweep's) or a list of record dicts; got {type(frame).__name__}")
    records = []
    for index, record in enumerate(frame):
        try:
            record = json_ready(upgrade(record, f"record {index}")) if isinstance(record, dict) else record
        except ResultsError as e:
            raise ConfigError(str(e)) from None
        problem = validate_record(record)
        if problem:
            raise ConfigError(f"record {index}: {problem}")
        records.append(record)
    return to_frame(records)


__all__ = ["build", "fit", "get_spec", "list_mechanisms", "profile", "project", "report", "sweep"]
