"""Memory of one call: peak above the pre-call baseline, bytes saved for backward.

- CUDA: the caching allocator's statistics (max_memory_allocated − allocated before).
- CPU: live-tensor tracking at the dispatcher. `LiveTensorTracker` sees every op's
  outputs; a fresh storage (not a view, not in-place) is counted from its creation
  until Python frees it (a weakref finaliser), and the peak of the running total is
  kept. Storages that existed before the call (parameters, inputs) never count.
  Scratch memory inside a kernel is invisible to it. The same tracking runs on the
  fake tensors of a count-only measurement (runtime/counting.py): their storages
  have sizes but no data, so peak and activation bytes follow from shapes alone.
- activation_bytes: storages packed by autograd's saved_tensors_hooks during the
  forward of a train step, each storage once, parameters and inputs excluded.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from effprof.runtime.storage import key_of, storage_key


class LiveTensorTracker(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._tracked: set[int] = set()
        self._makes_storage: dict[Any, bool] = {}  # op -> whether its results can be new storages (per op, once)

    def _release(self, key: int, nbytes: int) -> None:
        self._tracked.discard(key)
        self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        makes_storage = self._makes_storage.get(func)
        if makes_storage is None:  # a view or an in-place op returns no new storage; a metadata query no tensor
            returns = func._schema.returns
            makes_storage = self._makes_storage[func] = all(r.alias_info is None for r in returns) and any(
                "Tensor" in str(r.type) for r in returns)
        if not makes_storage:
            return out
        for t in tree_leaves(out):
            if not isinstance(t, torch.Tensor):
                continue
            storage = t.untyped_storage()
            key, nbytes = key_of(storage), storage.nbytes()
            if nbytes == 0 or key in self._tracked:
                continue
            self._tracked.add(key)
            self.live += nbytes
            self.peak = max(self.peak, self.live)
            weakref.finalize(storage, self._release, key, nbytes)
        return out


def peak_bytes(fn: Callable[[], Any], device: str) -> int:
    """Highest memory held during fn() above what was held before it (fn's result dropped after)."""
    if device.startswith("cuda"):  # the statistics of `device` (cuda:N), not of whichever GPU is current
        torch.cuda.synchronize(device)
        baseline = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device) - baseline)
    with LiveTensorTracker() as tracker:
        fn()
    return int(tracker.peak)


def activation_bytes(forward: Callable[[], Any], exclude: Iterable[torch.Tensor]) -> int:
    """Bytes of the tensors autograd saves for backward during forward(), each storage once."""
    excluded = {storage_key(t) for t in exclude}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        key = key_of(storage)
        if key not in excluded:
            saved[key] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        forward()
    return int(sum(saved.values()))
