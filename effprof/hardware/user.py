"""The user's own hardware, from a TOML file (`--hardware-file FILE.toml`), checked figure by figure.

    [hardware.my-gpu]                      # the name --hardware takes: letters, digits, '-', '_', '.'
    title = "My GPU 24 GB"                 # optional: how tables name it (default: the name)
    bandwidth = 936e9                      # memory bandwidth, bytes/s (decimal: 936 GB/s)
    source = "MyVendor X datasheet, rev 3" # where the figures come from
    [hardware.my-gpu.flops]                # dense peak FLOP/s per dtype, at least one of fp32 tf32 bf16 fp16 fp8
    fp32 = 35.6e12
    bf16 = 142e12
    [hardware.my-gpu.sources]              # optional: a source per figure (bandwidth, fp32, ...) over `source`
    bf16 = "MyVendor X tensor-core whitepaper, table 2"

Every error is one line naming the file, the key and what is accepted (HardwareError; the CLI exits 2).
A name already built in (registry.BUILTIN) is refused: a file cannot silently change a datasheet figure.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from effprof.hardware.registry import BUILTIN, DTYPES, Hardware
from effprof.suggest import one_line

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
ENTRY_KEYS = ("title", "bandwidth", "source", "flops", "sources")


class HardwareError(ValueError):
    """A --hardware name or --hardware-file that cannot be used: one line saying which value and what is accepted."""


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _text(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != "" and value.isprintable()


def load_file(path: str | Path) -> dict[str, Hardware]:
    """Every entry of a hardware TOML file, or HardwareError naming the first bad value."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    path = Path(path)
    where = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HardwareError(f"--hardware-file {where!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise HardwareError(f"--hardware-file {where!r} cannot be read: {type(e).__name__}") from None
    except (tomllib.TOMLDecodeError, RecursionError) as e:
        raise HardwareError(f"--hardware-file {where!r} is not valid TOML: {one_line(e, 160)}") from None
    extra = [k for k in data if k != "hardware"]
    if extra:
        raise HardwareError(f"{where}: top-level key {extra[0]!r} is not accepted; entries go in [hardware.NAME] tables")
    entries = data.get("hardware")
    if not isinstance(entries, dict) or not entries:
        raise HardwareError(f"{where}: no [hardware.NAME] table; e.g. [hardware.my-gpu] with bandwidth, source and [hardware.my-gpu.flops]")
    return {name: _entry(where, name, entry) for name, entry in entries.items()}


def _entry(where: str, name: str, entry: Any) -> Hardware:
    if not NAME.match(name):
        raise HardwareError(f"{where}: hardware name {name[:40]!r} is not accepted; use letters, digits, '-', '_' and '.' (64 at most)")
    if name in BUILTIN:
        raise HardwareError(f"{where}: hardware.{name} is built in ({BUILTIN[name].title}); give your entry another name")
    at = f"{where}: hardware.{name}"
    if not isinstance(entry, dict):
        raise HardwareError(f"{at} is not a table; write [hardware.{name}] with bandwidth, source and a flops table")
    unknown = [k for k in entry if k not in ENTRY_KEYS]
    if unknown:
        raise HardwareError(f"{at}.{unknown[0]} is not a key; accepted: {', '.join(ENTRY_KEYS)}")
    if not _positive(entry.get("bandwidth")):
        raise HardwareError(f"{at}.bandwidth = {entry.get('bandwidth')!r} is not a positive number of bytes/s (e.g. 936e9)")
    if not _text(entry.get("source")):
        raise HardwareError(f"{at}.source is {'missing' if 'source' not in entry else 'not one line of text'}; "
                            "say where the figures come from (the datasheet's name)")
    title = entry.get("title", name)
    if not _text(title):
        raise HardwareError(f"{at}.title is not one line of text")
    flops = entry.get("flops")
    if not isinstance(flops, dict) or not flops:
        raise HardwareError(f"{at}.flops is missing or empty; give dense FLOP/s for at least one of {', '.join(DTYPES)}")
    for dtype, value in flops.items():
        if dtype not in DTYPES:
            raise HardwareError(f"{at}.flops.{dtype} is not a dtype; accepted: {', '.join(DTYPES)}")
        if not _positive(value):
            raise HardwareError(f"{at}.flops.{dtype} = {value!r} is not a positive number of FLOP/s (e.g. 35.6e12)")
    sources = entry.get("sources", {})
    if not isinstance(sources, dict):
        raise HardwareError(f"{at}.sources is not a table of texts")
    for figure, text in sources.items():
        if figure not in ("bandwidth", *DTYPES):
            raise HardwareError(f"{at}.sources.{figure} names no figure; accepted: bandwidth, {', '.join(DTYPES)}")
        if not _text(text):
            raise HardwareError(f"{at}.sources.{figure} is not one line of text")
    return Hardware(name=name, title=title, bandwidth=float(entry["bandwidth"]), flops={k: float(v) for k, v in flops.items()},
                    sources={"all": entry["source"], **sources}, caveat=f"user entry from {where}")


def find(name: str, file: str | Path | None = None) -> Hardware:
    """The entry --hardware NAME names: built in, or from `file`; HardwareError listing what exists otherwise."""
    known = dict(BUILTIN)
    if file is not None:
        known.update(load_file(file))
    if name not in known:
        raise HardwareError(f"--hardware {name[:60]!r} is not known; accepted: {', '.join(known)}"
                            + ("" if file else " (or an entry of --hardware-file FILE.toml)"))
    return known[name]
