"""Option aliases shared by the commands, and the parsing of key=value flags."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from effprof.cli import BadInput
from effprof.config import KEYS

ParamOpt = Annotated[Optional[list[str]], typer.Option("--param", "-p", help="config key=value (repeatable), e.g. impl=tiled")]
VaryOpt = Annotated[Optional[list[str]], typer.Option("--vary", "-v", help="config key=v1,v2,... to sweep (repeatable)")]
ModeOpt = Annotated[Optional[list[str]], typer.Option("--mode", "-m", help="forward, train or decode (repeatable)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print machine-readable JSON instead of tables")]
MaxTimeOpt = Annotated[float, typer.Option("--max-time", help="seconds spent timing each point", min=0.01, max=600)]
ThreadsOpt = Annotated[int, typer.Option("--threads", help="CPU threads (0: torch's default)", min=0, max=1024)]


def parse_params(params: list[str] | None) -> dict[str, Any]:
    """['impl=tiled', 'window=64'] -> {'impl': 'tiled', 'window': '64'} (values typed later, per key)."""
    out: dict[str, Any] = {}
    for item in params or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or not value.strip():
            raise BadInput(f"--param {item!r} is not key=value; e.g. --param impl=tiled")
        if key not in KEYS:
            raise BadInput(f"--param {key!r} is not a config key; accepted: {', '.join(KEYS)}")
        out[key] = value.strip()
    return out


def parse_vary(vary: list[str] | None) -> dict[str, list[str]]:
    """['seq_len=256,512'] -> {'seq_len': ['256', '512']}."""
    out: dict[str, list[str]] = {}
    for item in vary or []:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise BadInput(f"--vary {item!r} is not key=v1,v2,...; e.g. --vary seq_len=256,512,1024")
        if key not in KEYS:
            raise BadInput(f"--vary {key!r} is not a config key; accepted: {', '.join(KEYS)}")
        parts = [v.strip() for v in values.split(",") if v.strip()]
        if not parts:
            raise BadInput(f"--vary {key} has no values; e.g. --vary {key}=256,512")
        if key in out:
            raise BadInput(f"--vary {key} is given twice; give all its values once, comma-separated")
        out[key] = parts
    return out


def parse_modes(modes: list[str] | None, default: str = "forward") -> list[str]:
    from effprof.registry import MODES

    modes = modes or [default]
    for mode in modes:
        if mode not in MODES:
            raise BadInput(f"--mode {mode!r} is not a mode; accepted: {', '.join(MODES)}")
    return list(dict.fromkeys(modes))
