"""One torch thread while the course only counts (FLOPs, bytes, forms agreeing): the counts do not depend on the
thread count, and on a busy shared machine a second thread spinning at every op barrier made counting 10–50× slower
(a MoE check: 27 s with 2 threads under load 11, 0.5 s with one). Timed labs keep the user's setting."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
