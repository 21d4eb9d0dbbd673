"""Run points in a worker subprocess, so a point that hangs, exhausts memory or crashes
becomes a record (status timeout / oom / crash / error) and the sweep goes on.

One worker process serves points one after another (torch is imported once); a
point that times out or kills the worker is recorded and a fresh worker is
started for the next point.

What the limits cover:

- `max_memory` is the memory a point may allocate on the CPU: the worker's address
  space (RLIMIT_AS) is capped at its own footprint once torch, effprof, the plugins
  and torch's thread pool are loaded, plus `max_memory`. An allocation beyond it
  fails with MemoryError and the point is recorded as `oom`. GPU memory is not
  covered. Below `MIN_MAX_MEMORY` nothing can be measured, so smaller values are
  refused.
- `timeout_s` is the wall time of one point. The parent kills the worker when no
  result came in time; the worker also ends itself shortly after its deadline, so a
  stopped or suspended parent cannot leave a point running forever.
- The worker dies with its parent: the kernel sends it SIGKILL when the parent exits
  (PR_SET_PDEATHSIG, Linux), and a watchdog thread ends it when its parent is gone
  elsewhere.
- A worker that dies is read after it is reaped: SIGKILL while the kernel's
  out-of-memory killer fired (its `oom_kill` counter in /proc/vmstat grew) is `oom`;
  any other signal is `crash`, naming the signal.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import signal
import threading
import time
from typing import Any

from effprof.measure.harness import Options, failed_record
from effprof.modules import definition, module_spec, register_definition
from effprof.plugins import load_plugin
from effprof.suggest import one_line

WORKER_START_S = 300  # a worker must be ready (torch imported) within this; not counted in --timeout
MIN_MAX_MEMORY = 64 << 20  # below this no point, however small, can be measured (tensors, FLOP counter, timer)
DEADLINE_GRACE_S = 5.0  # the worker ends itself this long after its point's deadline, if the parent did not
DEADLINE_EXIT_CODE = 124  # the worker's exit code when it ends itself at its deadline
WARM_UP = ("softmax_attention", "forward", {"seq_len": 8, "d_model": 16, "n_heads": 2})
PR_SET_PDEATHSIG = 1
M_ARENA_MAX = -8  # glibc mallopt parameter
THREAD_STACK_BYTES = 256 << 10


def _die_with_parent(parent_pid: int) -> None:
    """Have the kernel SIGKILL this process when its parent exits, and watch for that where it cannot."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the watchdog below still ends the worker within a second
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="effprof-parent-watch").start()


def _address_space() -> int:
    """This process's current virtual memory size in bytes (VmSize), the quantity RLIMIT_AS caps."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmSize in /proc/self/status")


def _one_malloc_arena() -> None:
    """Keep glibc from reserving 64 MiB of address space per thread that allocates (its malloc arenas).

    Under RLIMIT_AS those reservations, not the memory a point uses, would decide when it fails.
    """
    try:
        import ctypes

        ctypes.CDLL(None).mallopt(M_ARENA_MAX, 1)
    except (OSError, AttributeError):
        pass


def _prepare(options: Options, max_memory: int | None, plugins: tuple[str, ...]) -> None:
    """Load the plugins, warm up, then cap the address space at the worker's footprint plus `max_memory`.

    Module factory targets are not known yet: each point brings its target's definition (the driver's spec, claims
    and modes) and a probe job its own, so they are built under the limits, never here.
    """
    from effprof.measure.harness import measure_point

    for target in plugins:  # the parent's --plugin mechanisms exist here too
        load_plugin(target)
    # One tiny point first: it starts torch's thread pool and imports what measuring imports lazily (FLOP
    # counters, fvcore), so that the limit below measures the points, not the worker's own start-up.
    measure_point(*WARM_UP, dataclasses.replace(options, max_time_s=0.01, roofline=False))
    if max_memory:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (_address_space() + max_memory, resource.RLIM_INFINITY))


def _worker(conn, parent_pid: int, options: Options, max_memory: int | None, plugins: tuple[str, ...]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what an interrupt means
    _one_malloc_arena()
    threading.stack_size(THREAD_STACK_BYTES)  # the watchdog and deadline threads need little
    _die_with_parent(parent_pid)
    try:
        _prepare(options, max_memory, plugins)
    except BaseException as e:  # noqa: BLE001  (reported to the parent as one line, not a traceback here)
        conn.send(f"failed: {type(e).__name__}: {e}")
        return
    from effprof.measure.harness import measure_point

    conn.send("ready")
    while True:
        job = conn.recv()
        if job is None:
            return
        kind, timeout_s, *rest = job
        deadline = None
        if timeout_s is not None:
            deadline = threading.Timer(timeout_s + DEADLINE_GRACE_S, os._exit, args=(DEADLINE_EXIT_CODE,))
            deadline.daemon = True
            deadline.start()
        if kind == "probe":
            answer: Any = _probe_here(*rest)
        else:
            name, mode, config, point_options, made = rest
            answer = _register(made)
            if answer is None:
                if max_memory and point_options.roofline:
                    _machine_ceilings_unlimited(name, mode, config, point_options)
                answer = measure_point(name, mode, config, point_options)
        if deadline is not None:
            deadline.cancel()
        conn.send(answer)


def _register(made) -> str | None:
    """Register a module factory target as the driver has it (spec, claims, modes); None, or why it cannot be."""
    if made is None:
        return None
    try:
        register_definition(made)
    except Exception as e:  # noqa: BLE001  (e.g. the factory's module does not import here: the point's error)
        return f"the isolated worker cannot register {made[0]}: {type(e).__name__}: {one_line(e, 300)}"
    return None


def _probe_here(target: str, claims: tuple, values: dict[str, Any]) -> tuple[str, Any]:
    """("probed", decodes) of a factory target built and run here (effprof.modules.module_spec), or ("refused", one line)."""
    try:
        return "probed", module_spec(target, claims, values).decodes
    except Exception as e:  # noqa: BLE001  (ConfigError names what failed; anything else is reported in one line too)
        from effprof.config import ConfigError

        return "refused", str(e) if isinstance(e, ConfigError) else f"--module {target!r}: {type(e).__name__}: {one_line(e, 300)}"


def _machine_ceilings_unlimited(name: str, mode: str, config: dict[str, Any], options: Options) -> None:
    """Measure (and cache) the machine's roofline for this point without the memory limit.

    Its copy buffers (256 MiB on a CPU) belong to the machine's figures, not to the point.
    """
    import resource

    import torch

    from effprof.measure.harness import check_point
    from effprof.measure.roofline import machine_ceilings

    try:
        _, resolved = check_point(name, mode, config)
    except Exception:  # noqa: BLE001  (measure_point reports a bad point in its record)
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
    try:
        machine_ceilings(resolved["device"], resolved["dtype"], options.threads or torch.get_num_threads())
    except Exception:  # noqa: BLE001  (the point's own measurement reports what fails)
        pass
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


class WorkerStartError(RuntimeError):
    """The worker process could not load what it needs (a plugin, torch) before its first point."""


class IsolatedRunner:
    """measure(name, mode, config) in a worker process with a per-point timeout and memory limit."""

    def __init__(self, options: Options, timeout_s: float | None, max_memory: int | None, plugins: tuple[str, ...] = ()):
        self.options, self.timeout_s, self.max_memory, self.plugins = options, timeout_s, max_memory, tuple(plugins)
        self._ctx = mp.get_context("spawn")
        self._process = None
        self._conn = None

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        args = (child, os.getpid(), self.options, self.max_memory, self.plugins)
        self._process = self._ctx.Process(target=_worker, args=args, daemon=True)
        self._process.start()
        child.close()  # the worker holds the only other end: its death is EOF here
        self._conn = parent
        try:
            answer = parent.recv() if parent.poll(WORKER_START_S) else f"not ready within {WORKER_START_S} s"
        except EOFError:
            answer = "died while starting"
        if answer != "ready":
            code = self._reap()
            raise WorkerStartError(f"the isolated worker could not start: {answer} ({_exit_text(code)})")

    def _reap(self) -> int | None:
        """Stop the worker if it still runs, wait for it, and return its exit code (-N: killed by signal N)."""
        code = None
        if self._process is not None:
            self._process.join(timeout=5)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(timeout=5)
            code = self._process.exitcode
        if self._conn is not None:
            self._conn.close()
        self._process = self._conn = None
        return code

    def _kill(self) -> None:
        if self._process is not None and self._process.is_alive():
            self._process.kill()
        self._reap()

    def measure(self, name: str, mode: str, config: dict[str, Any]) -> dict[str, Any]:
        if self._process is None or not self._process.is_alive():
            try:
                self._start()
            except WorkerStartError as e:
                return failed_record(name, mode, config, self.options, "crash", str(e))
        oom_kills = _oom_kills()
        self._conn.send(("point", self.timeout_s, name, mode, config, self.options, definition(name)))
        if self._conn.poll(self.timeout_s):
            try:
                answer = self._conn.recv()
                return failed_record(name, mode, config, self.options, "error", answer) if isinstance(answer, str) else answer
            except EOFError:
                pass  # the worker died: read its exit status once it is reaped
        else:
            self._kill()
            return failed_record(name, mode, config, self.options, "timeout", f"no result within --timeout {self.timeout_s:g} s")
        code = self._reap()
        return failed_record(name, mode, config, self.options, *crash_status(code, oom_kills, _oom_kills(), self.max_memory))

    def probe(self, target: str, claims: tuple, values: dict[str, Any]) -> bool:
        """Build and run a module factory target in the worker, under --timeout and --max-memory (effprof.modules.probe.probe
        there): whether it decodes, or ConfigError in one line when it fails, hangs or kills the worker."""
        from effprof.config import ConfigError

        if self._process is None or not self._process.is_alive():
            try:
                self._start()
            except WorkerStartError as e:
                raise ConfigError(f"--module {target!r}: cannot probe it: {e}") from None
        oom_kills = _oom_kills()
        self._conn.send(("probe", self.timeout_s, target, tuple(claims), values))
        where = f"--module {target!r}: built and run at seq_len 16 in the isolated worker,"
        if not self._conn.poll(self.timeout_s):
            self._kill()
            raise ConfigError(f"{where} it gave no result within --timeout {self.timeout_s:g} s (the factory or its module hangs)")
        try:
            answer, value = self._conn.recv()
        except EOFError:
            status, error = crash_status(self._reap(), oom_kills, _oom_kills(), self.max_memory)
            raise ConfigError(f"{where} it ended the worker ({status}): {error}") from None
        if answer == "refused":
            raise ConfigError(value)
        return bool(value)

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        self._reap()

    def __enter__(self) -> IsolatedRunner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _oom_kills() -> int | None:
    """How many processes the kernel's out-of-memory killer has killed since boot (None where unknown)."""
    try:
        with open("/proc/vmstat") as f:
            for line in f:
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def crash_status(code: int | None, oom_before: int | None, oom_after: int | None, max_memory: int | None) -> tuple[str, str]:
    """(status, error) of a worker that died with exit code `code` (-N: killed by signal N)."""
    if code is not None and code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else f"signal {-code}"
        if name == "SIGKILL":
            if oom_before is not None and oom_after is not None and oom_after > oom_before:
                return "oom", "the worker was killed by the kernel's out-of-memory killer (SIGKILL)"
            if oom_before is None or oom_after is None:
                return "oom", "the worker was killed (SIGKILL), most likely by the out-of-memory killer"
            return "crash", "the worker was killed by SIGKILL from outside (not by the out-of-memory killer)"
        return "crash", f"the worker was killed by {name}"
    if code == DEADLINE_EXIT_CODE:
        return "timeout", "the worker ended itself at its deadline"
    return "crash", f"the worker {_exit_text(code)}"


def _exit_text(code: int | None) -> str:
    return "did not exit" if code is None else f"exited with code {code}"
