"""Compiled CPU kernels: small C files next to this one, built on first use with the system C compiler.

A kernel is plain C (no torch headers), compiled in well under a second with
`cc -O3 -ffast-math -march=native -fopenmp` into a per-user cache keyed by the source, the flags and the CPU,
and called through ctypes on the data pointers of contiguous tensors. It links the same OpenMP runtime that
torch has already loaded (libgomp.so.1), so the two share one thread pool.

`load(name)` returns the library, or None when there is no compiler, the build fails or EFFPROF_KERNELS=0;
the caller then runs its torch form, which computes the same function. `status(name)` says which, and why.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

FLAGS = ("-O3", "-ffast-math", "-march=native", "-fopenmp", "-fPIC")  # compiling the object
# Linking is a separate step WITHOUT -ffast-math: given it, gcc links crtfastmath.o into the library, whose
# constructor sets flush-to-zero / denormals-are-zero for the whole process the moment the kernel is loaded,
# silently changing every other computation in it (numpy's, torch's, the tests').
LINK_FLAGS = ("-shared", "-fopenmp")
LIBRARIES = ("-lm",)  # libm with libmvec: the vectorised expf that -ffast-math lets the loops call
_why: dict[str, str] = {}


def cache_root() -> Path:
    """effprof's per-user cache: <EFFPROF_CACHE, else XDG_CACHE_HOME, else ~/.cache>/effprof (kernels, ceilings)."""
    root = os.environ.get("EFFPROF_CACHE") or os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "effprof"


def cache_dir() -> Path:
    return cache_root() / "kernels"


def _cpu() -> str:
    """The CPU's model and flags: -march=native code is only reused on the same kind of CPU."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor()
    return "".join(line for line in lines if line.startswith(("model name", "flags")))[:20000]


@cache
def load(name: str) -> ctypes.CDLL | None:
    if os.environ.get("EFFPROF_KERNELS", "1") == "0":
        _why[name] = "disabled by EFFPROF_KERNELS=0"
        return None
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        _why[name] = "no C compiler (cc or gcc) on PATH"
        return None
    source = (Path(__file__).parent / f"{name}.c").read_bytes()
    key = hashlib.sha256(b"\0".join([source, " ".join(FLAGS + LINK_FLAGS + LIBRARIES).encode(), compiler.encode(), _cpu().encode()]))
    target = cache_dir() / f"{name}-{key.hexdigest()[:16]}.so"
    if not target.exists():
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            # build beside the target, then rename: concurrent workers never load a half-written file
            with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
                built = Path(tmp) / target.name
                src = Path(tmp) / f"{name}.c"
                src.write_bytes(source)
                obj = Path(tmp) / f"{name}.o"
                subprocess.run([compiler, *FLAGS, "-c", str(src), "-o", str(obj)], check=True, capture_output=True, timeout=120)
                subprocess.run([compiler, *LINK_FLAGS, str(obj), "-o", str(built), *LIBRARIES], check=True, capture_output=True,
                               timeout=120)
                os.replace(built, target)
        except (OSError, subprocess.SubprocessError) as error:
            stderr = getattr(error, "stderr", b"") or b""
            first = stderr.decode(errors="replace").strip().splitlines()[:1]
            _why[name] = f"build failed: {first[0] if first else error}"
            return None
    try:
        library = ctypes.CDLL(str(target))
    except OSError as error:
        _why[name] = f"load failed: {error}"
        return None
    _why[name] = f"compiled ({target})"
    return library


def status(name: str) -> str:
    """One line: whether kernel `name` is in use, and why not."""
    load(name)
    return _why[name]
