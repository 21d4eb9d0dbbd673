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


def profile(target: Any, mode: str = "forward", *, max_time: float = 1.0, threads: int = 0, count_only: bool = False,
            breakdown: bool = False, depth: int | None = None, seed: int = 0, options: Any = None, **config: Any) -> dict[str, Any]:
    """Measure one point and return its record.

    `target`: a registered mechanism's name, a module target ("pkg.mod:factory", "hf:llama"), an nn.Module
    instance (measured as it is; its config must match its shapes) or a factory (called with the config keys
    it names). `max_time`: seconds spent timing; `count_only`: count on fake tensors, nothing run or timed
    (any size); `breakdown`/`depth`: per-submodule figures. The other keywords are config keys.
    """
    from effprof.runner import options_from
    from effprof.runner import profile as _profile

    options = options or options_from(max_time, threads, count_only, breakdown, depth, seed)  # a harness.Options as it is
    return _profile(target, mode=mode, options=options, **config)


def sweep(names: Any, vary: dict[str, list[Any]], mode: str | list[str] = "forward", *, max_time: float = 1.0,
          threads: int = 0, count_only: bool = False, breakdown: bool = False, depth: int | None = None, seed: int = 0,
          options: Any = None, **config: Any) -> pandas.DataFrame:
    """Measure every combination of the `vary` values for each target; one row per point.

    `names`: one target or a list (names, module targets, nn.Module instances, factories; see `profile`).
    `executor="ray"` (with `address="auto"`, `"ray://host:port"` or none for a local Ray instance) runs the
    points as Ray tasks; `"process"` runs each in a worker subprocess; the default runs them here (the only
    place an instance or a factory object can run). `output=path` appends each record as it is measured.
    `options`: a measure.harness.Options, used as it is instead of the options above.
    """
    from effprof.runner import options_from
    from effprof.runner import sweep as _sweep

    options = options or options_from(max_time, threads, count_only, breakdown, depth, seed)  # a harness.Options as it is
    return _sweep(names, vary=vary, mode=mode, options=options, **config)


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
