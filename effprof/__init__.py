"""effprof: profile and analyse the complexity of efficient sequence-model mechanisms.

    import effprof
    effprof.list_mechanisms()
    module = effprof.build("linear_attention", seq_len=1024, impl="chunked")
    record = effprof.profile("softmax_attention", mode="forward", seq_len=1024)
    frame = effprof.sweep(["softmax_attention", "linear_attention"], vary={"seq_len": [256, 512, 1024]})
    fits = effprof.fit(frame)
    effprof.report(frame, "reports/attention.html")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from effprof.registry import build, get_spec, list_mechanisms

__version__ = "0.1.0"

if TYPE_CHECKING:
    import pandas


def profile(name: str, mode: str = "forward", **config: Any) -> dict[str, Any]:
    """Measure one point and return its record."""
    from effprof.runner import profile as _profile

    return _profile(name, mode=mode, **config)


def sweep(names: list[str] | str, vary: dict[str, list[Any]], mode: str | list[str] = "forward", **config: Any) -> pandas.DataFrame:
    """Measure every combination of the `vary` values for each mechanism; one row per point.

    `executor="ray"` (with `address="auto"`, `"ray://host:port"` or none for a local Ray instance) runs the
    points as Ray tasks; `"process"` runs each in a worker subprocess; the default runs them here.
    """
    from effprof.runner import sweep as _sweep

    return _sweep(names, vary=vary, mode=mode, **config)


def fit(frame: pandas.DataFrame) -> pandas.DataFrame:
    """Scaling exponents with CIs and claim verdicts for a frame of records."""
    from effprof.fit import fit_frame

    return fit_frame(frame)


def report(frame: pandas.DataFrame, path: str, command: str = "") -> str:
    """Write a self-contained HTML report of `frame` to `path`."""
    from effprof.analysis import analyse
    from effprof.render import html

    return html.write(analyse(frame, command=command), path)


__all__ = ["build", "fit", "get_spec", "list_mechanisms", "profile", "report", "sweep"]
