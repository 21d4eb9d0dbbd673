"""Executors: where the points of a sweep run (ARCHITECTURE.md § Pipeline: plan -> executor (local | process | ray) -> measure).

An executor only decides where a point runs; every executor yields the same records. Each one is a
context manager with one method, `records(points, options)`, that yields one record per point as it
finishes (completion order, which for `local` and `process` is the order of the points). The caller
(`effprof.runner.run_points`) appends each record to the results file, so the durability of a sweep is the
same whatever runs it.

    local    in this process, one point after another (the default)
    process  in a worker subprocess (--isolate): a timeout, OOM or crash becomes a record
    ray      one Ray task per point, on a local Ray instance or a cluster (effprof[ray])
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from effprof.config import ConfigError
from effprof.measure.harness import Options

EXECUTORS = ("local", "process", "ray")

Point = tuple[str, str, dict[str, Any]]  # (mechanism, mode, config overrides), as effprof.runner.plan gives them


class Executor:
    """Runs points and yields their records. Subclasses implement `records`; `close` frees what they started."""

    name = ""

    def records(self, points: list[Point], options: Options) -> Iterator[dict[str, Any]]:
        raise NotImplementedError

    # Where a module factory is first built and run (effprof.modules.Probe): None, in this process; the process
    # executor runs it in its worker, under the points' limits.
    probe = None

    def close(self) -> None:
        """Stop workers, cancel what is still running; safe to call twice."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_executor(name: str = "local", address: str | None = None, timeout_s: float | None = None,
                  max_memory: int | None = None, plugins: tuple[str, ...] = ()) -> Executor:
    """The executor called `name`, or ConfigError naming the bad value (or combination) and what is accepted.

    `timeout_s` needs a worker that can be stopped (process, ray); `max_memory` (an address-space limit) is the
    process executor's; `address` picks the Ray cluster (`auto`, `ray://host:port`, `host:port`); `plugins` are the
    --plugin targets a process worker loads (a Ray task ships the plugin's spec itself).
    """
    if name not in EXECUTORS:
        raise ConfigError(f"--executor {name!r} is not an executor; accepted: {', '.join(EXECUTORS)}")
    if address is not None and name != "ray":
        raise ConfigError(f"--address {address!r} picks a Ray cluster; it needs --executor ray, not {name}")
    if address is not None:
        from effprof.executors.ray import check_address  # imports no Ray: a bad address is refused even without it

        check_address(address)
    if name == "local":
        if timeout_s is not None or max_memory is not None:
            raise ConfigError("--timeout and --max-memory need --isolate or --executor process|ray (a point can only be stopped in a worker)")
        from effprof.executors.local import LocalExecutor

        return LocalExecutor()
    if name == "process":
        from effprof.executors.local import ProcessExecutor

        return ProcessExecutor(timeout_s, max_memory, plugins)
    if max_memory is not None:
        raise ConfigError("--max-memory is the process executor's limit; with --executor ray each point reserves "
                          "effprof's own memory estimate (see README, Running on a cluster)")
    from effprof.executors.ray import RayExecutor

    return RayExecutor(address, timeout_s)
