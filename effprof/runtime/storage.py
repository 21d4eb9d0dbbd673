"""A tensor's storage identity: state bytes (mechanisms) and live-memory tracking (measure) count each storage once."""

from __future__ import annotations

import torch


def storage_key(t: torch.Tensor) -> int:
    """The identity of t's storage (its StorageImpl), the same for every view of it; unlike data_ptr() it also
    tells apart the storages of fake tensors (count-only measurement), which have no data pointer."""
    return key_of(t.untyped_storage())


def key_of(storage: torch.UntypedStorage) -> int:
    """storage_key of a storage already in hand (the live-tensor tracker's per-op path fetches it once)."""
    return storage._cdata
