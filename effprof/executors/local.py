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

    def records(self, points: list[Point], options: Options) -> Iterator[dict[str, Any]]:
        from effprof.measure.isolate import IsolatedRunner

        self.close()  # one runner per run: its options are this run's
        self._runner = IsolatedRunner(options, self.timeout_s, self.max_memory, self.plugins)
        for name, mode, overrides in points:
            yield self._runner.measure(name, mode, overrides)

    def close(self) -> None:
        if self._runner is not None:
            self._runner.close()
            self._runner = None
