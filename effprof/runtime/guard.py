"""User code runs inside a guard: what it does to torch's process-wide settings ends with it, and how it ends is an exception.

User code is everything effprof calls but did not write: a `--module` factory and its module, a plugin's
builder and mechanism, the modules they import. Two things such code can do would otherwise reach past it:

- change torch's global state. `torch.set_grad_enabled(False)` in a factory turned every later mechanism's
  train point into an error; `torch.set_num_threads(1)` slowed every later point. `user_code()` snapshots
  the settings in TORCH_STATE before and puts back each one that changed after, naming it (the harness
  records these as the point's `warnings`).
- end the process. `sys.exit(0)` in a factory (argparse's --help does it) made `profile` exit 0 having
  measured nothing. Any BaseException other than KeyboardInterrupt leaving user code becomes UserExit, an
  ordinary Exception: a one-line error, an `error` record, a failed check, as any other exception of that code.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch

from effprof.suggest import one_line


class UserExit(RuntimeError):
    """User code raised SystemExit (or another BaseException that is not KeyboardInterrupt)."""


def _attribute(owner: Any, name: str) -> tuple[Callable[[], Any], Callable[[Any], None]]:
    return (lambda: getattr(owner, name)), (lambda value: setattr(owner, name, value))


def _deterministic() -> tuple[bool, bool]:
    return torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()


def _anomaly() -> tuple[bool, bool]:
    return torch.is_anomaly_enabled(), torch.is_anomaly_check_nan_enabled()


def _autocast(device: str) -> tuple[Callable[[], Any], Callable[[Any], None]]:
    def get() -> tuple[bool, Any]:
        return torch.is_autocast_enabled(device), torch.get_autocast_dtype(device)

    def set_(value: tuple[bool, Any]) -> None:
        torch.set_autocast_enabled(device, value[0])
        torch.set_autocast_dtype(device, value[1])

    return get, set_


# (what a user would call it, read it, set it): torch's process-wide settings that change what or how fast a
# later point computes.
TORCH_STATE: tuple[tuple[str, Callable[[], Any], Callable[[Any], None]], ...] = (
    ("torch's grad mode (torch.set_grad_enabled)", torch.is_grad_enabled, torch.set_grad_enabled),
    ("torch's threads (torch.set_num_threads)", torch.get_num_threads, torch.set_num_threads),
    ("torch's default dtype (torch.set_default_dtype)", torch.get_default_dtype, torch.set_default_dtype),
    ("torch's default device (torch.set_default_device)", torch.get_default_device, torch.set_default_device),
    ("torch's deterministic algorithms (torch.use_deterministic_algorithms)", _deterministic,
     lambda v: torch.use_deterministic_algorithms(v[0], warn_only=v[1])),
    ("torch's anomaly detection (torch.autograd.set_detect_anomaly)", _anomaly, lambda v: torch.set_anomaly_enabled(v[0], v[1])),
    ("torch's float32 matmul precision (torch.set_float32_matmul_precision)", torch.get_float32_matmul_precision,
     torch.set_float32_matmul_precision),
    ("torch's warn always (torch.set_warn_always)", torch.is_warn_always_enabled, torch.set_warn_always),
    ("torch's autocast on cpu (torch.set_autocast_enabled)", *_autocast("cpu")),
    ("torch's autocast on cuda (torch.set_autocast_enabled)", *_autocast("cuda")),
    ("torch.backends.cudnn.enabled", *_attribute(torch.backends.cudnn, "enabled")),
    ("torch.backends.cudnn.benchmark", *_attribute(torch.backends.cudnn, "benchmark")),
    ("torch.backends.cudnn.deterministic", *_attribute(torch.backends.cudnn, "deterministic")),
    ("torch.backends.cudnn.allow_tf32", *_attribute(torch.backends.cudnn, "allow_tf32")),
    ("torch.backends.cuda.matmul.allow_tf32", *_attribute(torch.backends.cuda.matmul, "allow_tf32")),
    ("torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction",
     *_attribute(torch.backends.cuda.matmul, "allow_fp16_reduced_precision_reduction")),
    ("torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction",
     *_attribute(torch.backends.cuda.matmul, "allow_bf16_reduced_precision_reduction")),
    ("torch.backends.mkldnn.enabled", *_attribute(torch.backends.mkldnn, "enabled")),
    ("torch.backends.opt_einsum.enabled", *_attribute(torch.backends.opt_einsum, "enabled")),
)


def torch_state() -> list[Any]:
    """The current value of each setting of TORCH_STATE (None where this torch cannot read it)."""
    values = []
    for _, get, _ in TORCH_STATE:
        try:
            values.append(get())
        except Exception:  # noqa: BLE001  (a setting this build of torch lacks)
            values.append(None)
    return values


def restore(before: list[Any]) -> list[str]:
    """Put back every setting that differs from `before`; one line per setting that had changed."""
    changes = []
    for (label, get, set_), old in zip(TORCH_STATE, before, strict=True):
        try:
            new = get()
            if old is None or new == old:
                continue
            set_(old)
        except Exception as e:  # noqa: BLE001  (cannot be put back: say so rather than hide it)
            changes.append(f"user code changed {label} and it could not be restored: {type(e).__name__}")
            continue
        changes.append(f"user code changed {label} from {_shown(old)} to {_shown(new)}; restored")
    return changes


def _shown(value: Any) -> str:
    return str(value).removeprefix("torch.")


@contextlib.contextmanager
def user_code(changes: list[str] | None = None) -> Iterator[None]:
    """Run user code: torch's global state restored after it (each change appended to `changes`), and any
    BaseException but KeyboardInterrupt turned into UserExit."""
    before = torch_state()
    try:
        yield
    except (KeyboardInterrupt, Exception):
        raise
    except BaseException as e:  # SystemExit, GeneratorExit, a BaseException of the user's own
        if isinstance(e, SystemExit):
            raise UserExit(f"the code called sys.exit({_shown(e.code)[:100]}) instead of returning (SystemExit)") from None
        raise UserExit(f"{type(e).__name__} (a BaseException): {one_line(e, 200) or 'no message'}") from None
    finally:
        found = restore(before)
        if changes is not None:
            changes.extend(c for c in found if c not in changes)
