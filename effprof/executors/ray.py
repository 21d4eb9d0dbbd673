"""The `ray` executor: one Ray task per point, on a local Ray instance or a cluster (pip install 'effprof[ray]').

Each task builds, measures and returns its record; the driver (this process) receives the records in
completion order and `effprof.runner.run_points` appends each one to the results file as it arrives.

What a task reserves, so that Ray never places two points where they would disturb or not fit each other:

    num_cpus   a timed CPU point reserves every core of the smallest node of the cluster (or --threads N
               cores where N is more), so no other point runs beside it on that node: sharing a node
               disturbs timings even on disjoint cores (caches, memory bandwidth; README "Running on a
               cluster" measures it). It runs with --threads N threads, or with all it reserved (--threads 0).
               An untimed point (FLOPs, memory, state only) or a CUDA point reserves --threads N, or 1.
    num_gpus   1 for a CUDA point: its GPU is its own. Give device=cuda; Ray sets CUDA_VISIBLE_DEVICES.
    memory     effprof.cost_model.estimated_bytes of the point (CPU) plus WORKER_BYTES for torch itself, capped at
               the largest node's memory so that a --force point runs alone there instead of never.

Faults become records, never lost sweeps: Ray's retries are off (a retried point would be timed twice
without saying so); a worker that dies gives `crash` (or `oom` when Ray's memory monitor killed it) with
the node and the message; a point still running after --timeout seconds is cancelled (force) and gives
`timeout`. Every task first reports where it started (node id, hostname, CPU model, device name), so a
fault record says where it happened and the timeout counts from the start of the point, not from the
time it waited in Ray's queue.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from effprof.config import ConfigError
from effprof.cost_model import estimated_bytes
from effprof.executors import Executor, Point
from effprof.measure.harness import Options
from effprof.suggest import one_line

WORKER_BYTES = 1 << 30  # torch and effprof in a Ray worker, before the point's own tensors
CONNECT_S = 5.0  # seconds to wait for the cluster's address to answer
POLL_S = 0.5  # how often the driver looks for overdue points when nothing finishes
ADDRESS = re.compile(r"^(?:ray://)?(?P<host>[A-Za-z0-9_.\-]+):(?P<port>[0-9]{1,5})$")  # or `auto`
MAX_PORT = 65535
INSTALL = "--executor ray needs Ray, which is not installed: pip install 'effprof[ray]'"


def _measure_task(name: str, mode: str, config: dict[str, Any], options: Options, device: str, spec):
    """The Ray task of one point (a generator): first where it runs, then its record.

    Everything is imported before the first yield, so --timeout counts the measurement only, not a fresh
    worker importing torch.
    """
    import ray

    from effprof.measure.env import machine
    from effprof.measure.harness import measure_point
    from effprof.registry import add, list_mechanisms

    if name not in list_mechanisms():
        add(spec)  # a plugin's mechanism: loaded by the driver's --plugin, not yet by this worker
    where = {"node_id": ray.get_runtime_context().get_node_id(), **machine(device)}
    yield where
    record = measure_point(name, mode, config, options)
    record["node_id"] = where["node_id"]
    yield record


@dataclass
class _Running:
    point: Point
    options: Options
    where: dict[str, Any] | None = None  # set when the task reports that it started
    started: float | None = None  # time.monotonic() of that report


@dataclass(frozen=True)
class Cluster:
    """What the alive nodes of a Ray cluster offer, for sizing the tasks."""

    min_cpus: int  # the smallest node with CPUs
    max_cpus: int
    max_gpus: int
    max_memory: int
    nodes: int = 0
    hostnames: tuple[str, ...] = field(default=())

    @classmethod
    def of(cls, nodes: list[dict[str, Any]]) -> Cluster:
        alive = [n for n in nodes if n.get("Alive")]
        cpus = [int(n["Resources"].get("CPU", 0)) for n in alive if n["Resources"].get("CPU", 0) >= 1]
        if not cpus:
            raise ConfigError("the Ray cluster has no node with a CPU; start one with: ray start --address=HEAD:6379")
        return cls(min(cpus), max(cpus), max(int(n["Resources"].get("GPU", 0)) for n in alive),
                   max(int(n["Resources"].get("memory", 0)) for n in alive), len(alive),
                   tuple(n.get("NodeManagerHostname", "") for n in alive))


def check_address(address: str | None) -> str | None:
    """`auto`, `ray://host:port` or `host:port` (ASCII host, port 1 to 65535), or ConfigError naming the bad value."""
    if address is None:
        return None
    if not isinstance(address, str):
        raise ConfigError(f"--address {address!r} is not a Ray address; accepted: auto, ray://host:port, host:port")
    text = address.strip()
    if text == "auto":
        return text
    match = ADDRESS.fullmatch(text)
    if not match:
        raise ConfigError(f"--address {address!r} is not a Ray address; accepted: auto, ray://host:port, host:port")
    if not 1 <= int(match["port"]) <= MAX_PORT:
        raise ConfigError(f"--address {address!r}: port {match['port']} is not a port; accepted: 1 to {MAX_PORT}")
    return text


def reachable(address: str, timeout_s: float = CONNECT_S) -> None:
    """ConfigError unless something listens at the address's host:port (Ray itself would wait for minutes)."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise ConfigError(f"--address {address!r}: nothing answers at {host}:{port} ({e.strerror or e}); start the cluster "
                          "with ray start --head, or give auto, ray://host:port or host:port of a running one") from None


def task_resources(spec, resolved: dict[str, Any], mode: str, options: Options, cluster: Cluster) -> tuple[Options, dict[str, Any]]:
    """(the options the task measures with, the resources it reserves): see the module's docstring."""
    device = resolved["device"]
    cuda = device.startswith("cuda")
    if cuda and device != "cuda":
        raise ConfigError(f"device={device!r}: with --executor ray give device=cuda; Ray gives each point a GPU of its own")
    if cuda and cluster.max_gpus < 1:
        raise ConfigError("device=cuda: no node of the Ray cluster has a GPU; accepted here: device=cpu")
    if options.timing and not cuda:
        cpus = max(options.threads, cluster.min_cpus)  # a timed CPU point has a whole node to itself
    else:
        cpus = options.threads or 1  # untimed points pack; a CUDA point's GPU is its own
    if cpus > cluster.max_cpus:
        raise ConfigError(f"--threads {cpus} reserves {cpus} CPUs per point, more than any node of the Ray cluster has; "
                          f"accepted: 0 to {cluster.max_cpus}")
    need = WORKER_BYTES + (0 if cuda else int(estimated_bytes(spec, resolved, mode)))
    resources = {"num_cpus": cpus, "num_gpus": 1 if cuda else 0, "memory": max(1, min(need, cluster.max_memory))}
    return replace(options, threads=options.threads or cpus), resources


class RayExecutor(Executor):
    """Points as Ray tasks. Without `address`, a local Ray instance is started here and shut down by close()."""

    name = "ray"

    def __init__(self, address: str | None = None, timeout_s: float | None = None):
        try:
            import ray
        except ImportError:
            raise ConfigError(INSTALL) from None
        self.address, self.timeout_s = check_address(address), timeout_s
        if self.address not in (None, "auto"):
            reachable(self.address)
        self._ray = ray
        self._connected = False  # whether this executor called ray.init (and so calls ray.shutdown)
        self._running: dict[Any, _Running] = {}

    def _connect(self) -> None:
        ray = self._ray
        if ray.is_initialized():
            return  # a Ray session the caller opened (a notebook, a test): use it, leave it open
        local = self.address is None
        extra = {"include_dashboard": False} if local else {}
        try:
            ray.init(address="local" if local else self.address, log_to_driver=False,
                     logging_level=logging.WARNING, **extra)
        except Exception as e:  # ConnectionError, a bad ray:// handshake, a version mismatch ...
            message = one_line(e, 300)
            raise ConfigError(f"--address {self.address!r}: cannot connect to a Ray cluster ({message}); "
                              "accepted: auto, ray://host:port, host:port of a running cluster (ray start --head)") from None
        self._connected = True

    def records(self, points: list[Point], options: Options) -> Iterator[dict[str, Any]]:
        from effprof.measure.harness import check_point

        ray = self._ray
        self._connect()
        cluster = Cluster.of(ray.nodes())
        task = ray.remote(_measure_task)
        jobs = []
        for name, mode, overrides in points:  # every point sized (and refused) before any is submitted
            spec, resolved = check_point(name, mode, overrides)
            jobs.append(((name, mode, overrides), *task_resources(spec, resolved, mode, options, cluster), resolved["device"], spec))
        for point, task_options, resources, device, spec in jobs:
            ref = task.options(max_retries=0, retry_exceptions=False, **resources).remote(*point, task_options, device, spec)
            self._running[ref] = _Running(point, task_options)
        try:
            while self._running:
                ready, _ = ray.wait(list(self._running), num_returns=1, timeout=self._wait_s())
                for ref in ready:
                    record = self._advance(ref)
                    if record is not None:
                        yield record
                for ref in self._overdue():
                    yield self._stop(ref)
        finally:
            self.cancel()

    def _wait_s(self) -> float:
        if self.timeout_s is None:
            return POLL_S
        now = time.monotonic()
        left = [r.started + self.timeout_s - now for r in self._running.values() if r.started is not None]
        return max(0.01, min([POLL_S, *left]))

    def _advance(self, ref) -> dict[str, Any] | None:
        """The record a ready task gave, or None when it only reported where it started."""
        running = self._running[ref]
        try:
            value = self._ray.get(next(ref))
        except StopIteration:
            self._running.pop(ref)
            return self._failed(running, "crash", "the task ended without a record")
        except Exception as e:  # the worker died, the node was lost, the task raised
            self._running.pop(ref)
            return self._failed(running, *fault(e))
        if "mechanism" in value:
            self._running.pop(ref)
            return value
        running.where, running.started = value, time.monotonic()
        return None

    def _overdue(self) -> list[Any]:
        if self.timeout_s is None:
            return []
        now = time.monotonic()
        return [ref for ref, r in self._running.items() if r.started is not None and now - r.started > self.timeout_s]

    def _stop(self, ref) -> dict[str, Any]:
        running = self._running.pop(ref)
        self._ray.cancel(ref, force=True)
        return self._failed(running, "timeout", f"no result within --timeout {self.timeout_s:g} s; the task was cancelled")

    def _failed(self, running: _Running, status: str, error: str) -> dict[str, Any]:
        """The record of a point that gave none: where it ran (when it got that far), its status and why."""
        from effprof.measure.harness import failed_record

        name, mode, overrides = running.point
        where = running.where or {"node_id": None, "hostname": None, "cpu_model": None}
        place = f"on {where['hostname']} (node {where['node_id'][:12]}): " if running.where else ""
        record = failed_record(name, mode, overrides, running.options, status, place + error)
        record.update(where)
        return record

    def cancel(self) -> None:
        """Cancel every task still queued or running (force: its worker is killed); their points stay pending."""
        for ref in list(self._running):
            try:
                self._ray.cancel(ref, force=True)
            except Exception:  # already finished, or its node is gone
                pass
        self._running.clear()

    def close(self) -> None:
        self.cancel()
        if self._connected:
            self._ray.shutdown()
            self._connected = False


def fault(error: BaseException) -> tuple[str, str]:
    """(status, one-line message) of a Ray task that gave no record."""
    from ray import exceptions

    text = " ".join(str(error).split())
    if isinstance(error, exceptions.OutOfMemoryError):
        return "oom", "Ray's memory monitor killed the worker: " + text[:300]
    if isinstance(error, (exceptions.NodeDiedError, exceptions.ObjectLostError)):
        return "crash", "the node was lost: " + text[:300]
    if isinstance(error, exceptions.RayTaskError):
        cause = getattr(error, "cause", None)
        return "error", (f"{type(cause).__name__}: {' '.join(str(cause).split())}" if cause else text)[:500]
    if isinstance(error, (exceptions.WorkerCrashedError, exceptions.RayError)):
        return "crash", "the worker died (a crash, a kill, or the kernel's OOM killer): " + text[:300]
    return "error", f"{type(error).__name__}: {text[:300]}"
