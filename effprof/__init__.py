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

from typing import TYPE_CHECKING, Any

from effprof.registry import build, get_spec, list_mechanisms

__version__ = "0.1.0"

if TYPE_CHECKING:
    import pandas


def profile(name: str, mode: str = "forward", hardware: Any = None, **config: Any) -> dict[str, Any]:
    """Measure one point and return its record (with `hardware`, its roofline projection onto that device too)."""
    from effprof.runner import profile as _profile

    record = _profile(name, mode=mode, **config)
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
    from effprof.records import to_frame

    rows = [{k: v for k, v in row.items() if not (isinstance(v, float) and v != v)} for row in records.to_dict("records")]
    return to_frame(project_records(rows, entry)[0])


def sweep(names: list[str] | str, vary: dict[str, list[Any]], mode: str | list[str] = "forward", hardware: Any = None,
          **config: Any) -> pandas.DataFrame:
    """Measure every combination of the `vary` values for each mechanism; one row per point.

    `executor="ray"` (with `address="auto"`, `"ray://host:port"` or none for a local Ray instance) runs the
    points as Ray tasks; `"process"` runs each in a worker subprocess; the default runs them here.
    """
    from effprof.runner import sweep as _sweep

    frame = _sweep(names, vary=vary, mode=mode, **config)
    return project(frame, hardware) if hardware is not None else frame


def fit(frame: pandas.DataFrame) -> pandas.DataFrame:
    """Scaling exponents with CIs and claim verdicts for a frame of records."""
    from effprof.fit import fit_frame

    return fit_frame(frame)


def report(frame: pandas.DataFrame, path: str, command: str = "", hardware: Any = None) -> str:
    """Write a self-contained HTML report of `frame` to `path` (with `hardware`, projected onto it)."""
    from effprof.analysis import analyse
    from effprof.hardware.user import find
    from effprof.render import html

    entry = find(hardware) if isinstance(hardware, str) else hardware
    return html.write(analyse(frame, command=command, hardware=entry), path)


__all__ = ["build", "fit", "get_spec", "list_mechanisms", "profile", "project", "report", "sweep"]
