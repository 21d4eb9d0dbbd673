"""The executors of one machine: in this process (`local`) or in a worker subprocess (`process`, --isolate)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from effprof.executors import Executor, Point
from effprof.measure.harness import Options, measure_point


class LocalExecutor(Executor):
    """Each point in this process, one after another: the fastest, and a crash ends the sweep."""

    name = "local"

    def records(self, points: list[Point], options: Options) -> Iterator[dict[str, Any]]:
        for name, mode, overrides in points:
            yield measure_point(name, mode, overrides, options)


class ProcessExecutor(Executor):
    """Each point in a worker subprocess (effprof.measure.isolate): timeouts, OOM and crashes become records."""

    name = "process"

    def __init__(self, timeout_s: float | None = None, max_memory: int | None = None, plugins: tuple[str, ...] = ()):
        self.timeout_s, self.max_memory, self.plugins = timeout_s, max_memory, tuple(plugins)
        self._runner = None

    def _isolated(self, options: Options):
        """The worker (started on first use, kept between runs); each point is measured with this run's options."""
        from effprof.measure.isolate import IsolatedRunner
        from effprof.plugins import loaded_plugins

        if self._runner is None:  # the plugins this process loaded, however (--plugin, pyproject.toml, load_plugin)
            plugins = tuple(dict.fromkeys((*self.plugins, *loaded_plugins())))
            self._runner = IsolatedRunner(options, self.timeout_s, self.max_memory, plugins)
        self._runner.options = options
        return self._runner

    def records(self, points: list[Point], options: Options) -> Iterator[dict[str, Any]]:
        runner = self._isolated(options)
        for name, mode, overrides in points:
            yield runner.measure(name, mode, overrides)

    def probe(self, target: str, claims: tuple, values: dict[str, Any]) -> bool:
        """A module factory's first build and run, in the worker under the same limits as its points."""
        return self._isolated(Options()).probe(target, claims, values)

    def close(self) -> None:
        if self._runner is not None:
            self._runner.close()
            self._runner = None
