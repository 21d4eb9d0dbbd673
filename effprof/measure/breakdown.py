"""Where the cost goes inside a module: FLOPs, forward time and peak memory per submodule.

    breakdown = measure_breakdown(module, run, depth=2)
    # {"": {"type": "Mamba", "calls": 1, "flops": 6.6e7, "time_s": 1.2e-3, "peak_bytes": 2.1e6},
    #  "in_proj": {"type": "Linear", ...}, "conv1d": {...}, ...}

Keys are submodule paths as `named_modules()` gives them ("" is the whole module;
a factory's wrapper is see-through, so its paths are the factory module's own).
Every figure is inclusive, like torch.utils.flop_counter.FlopCounterMode's module
hierarchy: a module's FLOPs, time and memory include its children's, so children do
not add up to their parent when the parent also computes itself (the attention
core between the projections, a residual add).

- flops: counted by effprof's FlopCounter (measure/flops.py) between the module's
  forward pre-hook and its forward hook, summed over its calls.
- peak_bytes: the highest live-tensor total during the module's calls above what was
  live at its entry (the dispatcher tracker of measure/memory.py, on every device).
- time_s: median over `repeats` runs of the wall time between the hooks, summed over
  its calls, measured on separate passes with no counter active; CUDA is
  synchronised at every hook, so each module's time is its own.

One pass with the counter and the tracker, then the timed passes: nothing is timed
under instrumentation. The breakdown covers the forward pass (forward mode); a
backward has no module hooks that time or count it reliably.
"""

from __future__ import annotations

import statistics
import time as clock
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from effprof.measure.flops import FlopCounter
from effprof.measure.memory import LiveTensorTracker
from effprof.modules.wrap import ModuleWithInputs

Breakdown = dict[str, dict[str, Any]]


def module_paths(root: nn.Module, depth: int | None = None) -> dict[str, nn.Module]:
    """{path: submodule} down to `depth` levels below the root ("" is the root), each module once.

    A level is a module that runs: the layers of a ModuleList or ModuleDict (containers with no forward of their
    own) sit at the container's level, so `layers.0` is one level down and `layers.0.self_attn` two, as a reader
    counts them (a ModuleList used to cost a level of its own, hiding its layers at depth 1 and naming them "0",
    "1" at depth 2). A factory's ModuleWithInputs wrapper is see-through: the paths are its inner module's.
    """
    named = root.inner if isinstance(root, ModuleWithInputs) else root
    paths: dict[str, nn.Module] = {"": root}
    seen = {id(root), id(named)}
    modules = dict(named.named_modules())
    levels = {"": 0}
    for path, module in modules.items():
        if not path:
            continue
        parent = path.rpartition(".")[0]
        container = isinstance(modules.get(parent), (nn.ModuleList, nn.ModuleDict))
        levels[path] = levels.get(parent, 0) + (0 if container else 1)
        if id(module) in seen or (depth is not None and levels[path] > depth):
            continue
        seen.add(id(module))
        paths[path] = module
    return paths


class _PeakTracker(LiveTensorTracker):
    """The live-tensor tracker, also keeping the peak of each module on the call stack."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[list[int]] = []  # [live at entry, peak since] per module on the stack

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = super().__torch_dispatch__(func, types, args, kwargs)
        for entry in self.open:
            entry[1] = max(entry[1], self.live)
        return out


@contextmanager
def _hooks(paths: dict[str, nn.Module], enter: Callable[[str], None], leave: Callable[[str], None]) -> Iterator[None]:
    handles = []
    for path, module in paths.items():
        handles.append(module.register_forward_pre_hook(lambda _m, _i, path=path: enter(path)))
        handles.append(module.register_forward_hook(lambda _m, _i, _o, path=path: leave(path), always_call=True))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def measure_breakdown(module: nn.Module, run: Callable[[], Any], depth: int | None = None, repeats: int = 5) -> Breakdown:
    """FLOPs, peak memory and forward time of each submodule while `run()` calls `module`."""
    paths = module_paths(module, depth)
    out: Breakdown = {path: {"type": type(m).__name__, "calls": 0, "flops": 0.0, "peak_bytes": 0, "time_s": None}
                      for path, m in paths.items()}
    if isinstance(module, ModuleWithInputs):
        out[""]["type"] = type(module.inner).__name__

    with FlopCounter() as counter, _PeakTracker() as tracker:
        starts: dict[str, list[tuple[float, list[int]]]] = {}

        def enter(path: str) -> None:
            entry = [tracker.live, tracker.live]
            tracker.open.append(entry)
            starts.setdefault(path, []).append((counter.total, entry))

        def leave(path: str) -> None:
            flops, entry = starts[path].pop()
            del tracker.open[next(i for i, e in enumerate(tracker.open) if e is entry)]  # by identity: equal lists differ
            row = out[path]
            row["calls"] += 1
            row["flops"] += counter.total - flops
            row["peak_bytes"] = max(row["peak_bytes"], entry[1] - entry[0])

        with _hooks(paths, enter, leave):
            run()

    for path, seconds in time_modules(paths, run, repeats).items():
        out[path]["time_s"] = seconds
    return {path: row for path, row in out.items() if row["calls"]}


def time_modules(paths: dict[str, nn.Module], run: Callable[[], Any], repeats: int = 5) -> dict[str, float]:
    """Median over `repeats` runs of each module's forward wall time (summed over its calls in one run)."""
    is_cuda = any(p.is_cuda for m in paths.values() for p in m.parameters(recurse=False)) or (
        torch.cuda.is_available() and any(p.is_cuda for p in next(iter(paths.values())).parameters()))
    sync = torch.cuda.synchronize if is_cuda else (lambda: None)
    samples: dict[str, list[float]] = {}
    current: dict[str, float] = {}
    opened: dict[str, list[float]] = {}

    def enter(path: str) -> None:
        sync()
        opened.setdefault(path, []).append(clock.perf_counter())

    def leave(path: str) -> None:
        sync()
        current[path] = current.get(path, 0.0) + clock.perf_counter() - opened[path].pop()

    with _hooks(paths, enter, leave):
        for _ in range(repeats):
            current.clear()
            run()
            for path, seconds in current.items():
                samples.setdefault(path, []).append(seconds)
    return {path: statistics.median(values) for path, values in samples.items()}
