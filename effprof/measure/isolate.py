"""Run points in a worker subprocess, so a point that hangs, exhausts memory or crashes
becomes a record (status timeout / oom / error) and the sweep goes on.

One worker process serves points one after another (torch is imported once); a
point that times out or kills the worker is recorded and a fresh worker is
started for the next point. `max_memory` limits the worker's address space
(RLIMIT_AS, CPU allocations) so an oversized point fails with MemoryError
instead of taking the machine down.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
from typing import Any

from effprof.measure.harness import Options, failed_record

TORCH_IMPORT_HEADROOM = 2 << 30  # address space torch itself maps before any tensor exists
WORKER_START_S = 300  # a worker must be ready (torch imported) within this; not counted in --timeout


def _worker(conn, max_memory: int | None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what an interrupt means
    import torch  # noqa: F401  (map torch's libraries before the limit applies)

    if max_memory:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (max_memory + TORCH_IMPORT_HEADROOM, resource.RLIM_INFINITY))
    from effprof.measure.harness import measure_point

    conn.send("ready")
    while True:
        job = conn.recv()
        if job is None:
            return
        name, mode, config, options = job
        conn.send(measure_point(name, mode, config, options))


class IsolatedRunner:
    """measure(name, mode, config) in a worker process with a per-point timeout."""

    def __init__(self, options: Options, timeout_s: float | None, max_memory: int | None):
        self.options, self.timeout_s, self.max_memory = options, timeout_s, max_memory
        self._ctx = mp.get_context("spawn")
        self._process = None
        self._conn = None

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        self._process = self._ctx.Process(target=_worker, args=(child, self.max_memory), daemon=True)
        self._process.start()
        self._conn = parent
        if not parent.poll(WORKER_START_S) or parent.recv() != "ready":
            self._stop()
            raise RuntimeError(f"the isolated worker did not start within {WORKER_START_S} s")

    def _stop(self) -> None:
        if self._process is not None:
            if self._process.is_alive():
                self._process.kill()
            self._process.join(timeout=5)
        self._process = self._conn = None

    def measure(self, name: str, mode: str, config: dict[str, Any]) -> dict[str, Any]:
        if self._process is None or not self._process.is_alive():
            self._start()
        self._conn.send((name, mode, config, self.options))
        if self._conn.poll(self.timeout_s):
            try:
                return self._conn.recv()
            except EOFError:
                pass  # the worker died while sending: read its exit code below
        else:
            self._stop()
            return failed_record(name, mode, config, self.options, "timeout", f"no result within --timeout {self.timeout_s:g} s")
        code = self._process.exitcode if self._process is not None else None
        self._stop()
        return failed_record(name, mode, config, self.options, *_crash_status(code, self.max_memory))

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        self._stop()

    def __enter__(self) -> "IsolatedRunner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _crash_status(code: int | None, max_memory: int | None) -> tuple[str, str]:
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        if name == "SIGKILL":
            return "oom", "the worker was killed (SIGKILL), most likely by the out-of-memory killer"
        return "error", f"the worker crashed with {name}"
    return "error", f"the worker exited with code {code}"
