"""Option aliases shared by the commands, and the parsing of key=value flags."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from effprof.cli import BadInput, complete
from effprof.config import KEYS, MAX_THREADS, MAX_TIME_S
from effprof.suggest import accepted, did_you_mean

ParamOpt = Annotated[list[str] | None, typer.Option("--param", "-p", autocompletion=complete.keys,
    help=("config key=value (repeatable), e.g. impl=tiled; NAME.key=value applies to mechanism NAME only"))]
VaryOpt = Annotated[list[str] | None, typer.Option("--vary", "-v", autocompletion=complete.keys, help="config key=v1,v2,... to sweep (repeatable)")]
ModeOpt = Annotated[list[str] | None, typer.Option("--mode", "-m", autocompletion=complete.modes, help="forward, train or decode (repeatable)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print machine-readable JSON instead of tables")]
MaxTimeOpt = Annotated[float, typer.Option("--max-time", help="seconds spent timing each point", min=MAX_TIME_S[0], max=MAX_TIME_S[1])]
ThreadsOpt = Annotated[int, typer.Option("--threads", help="CPU threads (0: torch's default)", min=0, max=MAX_THREADS)]
CountOnlyOpt = Annotated[bool, typer.Option("--count-only",
    help=("count, don't run: FLOPs, bytes moved, params, state/KV, activation and peak bytes from shapes alone "
          "(fake tensors; nothing of full size is allocated, nothing is timed), at any size"))]
IsolateOpt = Annotated[bool, typer.Option("--isolate", help="run each point in a worker subprocess (timeouts, OOM, crashes become records)")]
TimeoutOpt = Annotated[float | None, typer.Option("--timeout",
    help=("seconds per point before it is recorded as timeout (with --isolate or --executor process|ray)"), min=0.1)]
MaxMemoryOpt = Annotated[str | None, typer.Option("--max-memory",
    help=("CPU memory a point may allocate beyond the worker's own, e.g. 8G; at least 64M (with --isolate / "
          "--executor process)"))]
ExecutorOpt = Annotated[str | None, typer.Option("--executor",
    help=("where points run: local (this process; default), process (a worker subprocess each; same as "
          "--isolate) or ray (Ray tasks; pip install 'effprof[ray]')"))]
AddressOpt = Annotated[str | None, typer.Option("--address",
    help=("Ray cluster for --executor ray: auto, ray://host:port or host:port (default: start a local Ray "
          "instance)"))]
LatexOpt = Annotated[Path | None, typer.Option("--latex",
    help="also write booktabs LaTeX tables (raw values, fits, crossovers, complexity, roofline, per-module fits) to this .tex file")]
CsvOpt = Annotated[Path | None, typer.Option("--csv",
    help="also write the records as CSV, and beside them <stem>_fits.csv, <stem>_crossovers.csv and <stem>_module_fits.csv")]
FiguresOpt = Annotated[Path | None, typer.Option("--figures",
    help=("also export every figure as SVG, PDF and PNG (300 dpi) into this folder, sized for a paper (needs "
          "effprof[figures] and Chromium)"))]
FigureSizeOpt = Annotated[str, typer.Option("--figure-size", metavar="single|double",
    help=("width preset of the --figures exports: single (3.5 in column, 8 pt text) or double (7 in page "
          "width, 9 pt)"))]
ModuleOpt = Annotated[list[str] | None, typer.Option("--module", autocompletion=complete.modules,
    help=("also measure a module from a factory: pkg.mod:factory or hf:model_type.layer (repeatable)"))]
ClaimOpt = Annotated[list[str] | None, typer.Option("--claim", autocompletion=complete.claims,
    help=("a claim for the --module targets: metric:axis=exponent[@mode], e.g. flops:seq_len=2 (repeatable); "
          "TARGET.metric:axis=exponent for one target only, e.g. mylayers:build_conv.flops:seq_len=1"))]
PlotlyjsOpt = Annotated[str, typer.Option("--plotlyjs", metavar="inline|cdn|directory",
    help=("how the HTML report loads plotly.js: inline (default: one self-contained file that opens offline), "
          "cdn (from cdn.plot.ly, version-pinned and integrity-checked; 4.6 MB smaller, needs a network to "
          "view), directory (plotly.min.js written once beside the report, shared by every report of the "
          "folder)"))]
LabelOpt = Annotated[list[str] | None, typer.Option("--label",
    help=('a name for a series in every figure, table, LaTeX, CSV and HTML (repeatable): NAME="text" for a mechanism or '
          'module target, KEY=VALUE="text" for a variant, e.g. --label softmax_attention="Softmax (sdpa)" '
          '--label impl=recurrent="scan"'))]
CompileOpt = Annotated[bool, typer.Option("--compile",
    help=("also measure each point compiled with torch.compile (a variant compile=MODE beside the eager compile=none): "
          "cold time, warm time, peak memory and graph breaks; FLOPs are counted on the eager module"))]
CompileModeOpt = Annotated[str, typer.Option("--compile-mode", metavar="MODE",
    help=("torch.compile mode for --compile: default (inductor), reduce-overhead (and CUDA graphs), max-autotune, "
          "max-autotune-no-cudagraphs"))]
HardwareOpt = Annotated[str | None, typer.Option("--hardware",
    help=("also project every point onto this hardware (h100-sxm, h100-pcie, h200, a100-40gb, a100-80gb, l4, l40s, rtx-4090, "
          "mi300x, or an entry of --hardware-file): a roofline lower bound from the counted FLOPs and bytes, not a measurement"))]
HardwareFileOpt = Annotated[Path | None, typer.Option("--hardware-file",
    help="a TOML file of your own hardware entries for --hardware (format: README, 'Roofline')")]
ForceOpt = Annotated[bool, typer.Option("--force", help="run points even when their estimated memory exceeds the machine's, and grids above 10000 points")]


def parse_params(params: list[str] | None, open_keys: bool = False) -> dict[str, Any]:
    """['impl=tiled', 'window=64'] -> {'impl': 'tiled', 'window': '64'} (values typed later, per key).

    open_keys: a module factory is measured, whose own keys are checked against its signature later.
    """
    out: dict[str, Any] = {}
    for item in params or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or not value.strip():
            raise BadInput(f"--param {item!r} is not key=value; e.g. --param impl=tiled")
        bare = key.rpartition(".")[2]  # NAME.key scopes a value to one mechanism
        if bare not in KEYS and not open_keys:
            raise BadInput(f"--param {key!r} is not a config key" + accepted(bare, KEYS, "effprof list --keys"))
        if key in out:
            raise BadInput(f"--param {key} is given twice ({out[key]!r} and {value.strip()!r}); give it once")
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
            raise BadInput(f"--vary {key!r} is not a config key" + accepted(key, KEYS, "effprof list --keys"))
        parts = [v.strip() for v in values.split(",") if v.strip()]
        if not parts:
            raise BadInput(f"--vary {key} has no values; e.g. --vary {key}=256,512")
        if key in out:
            raise BadInput(f"--vary {key} is given twice; give all its values once, comma-separated")
        repeated = [v for i, v in enumerate(parts) if v in parts[:i]]
        if repeated:
            raise BadInput(f"--vary {key} lists {repeated[0]!r} twice; give each value once")
        out[key] = parts
    return out


def parse_modes(modes: list[str] | None, default: str = "forward") -> list[str]:
    from effprof.registry import MODES

    modes = modes or [default]
    for mode in modes:
        if mode not in MODES:
            raise BadInput(f"--mode {mode!r} is not a mode{did_you_mean(mode, MODES)}; accepted: {', '.join(MODES)}")
    return list(dict.fromkeys(modes))


SIZE_UNITS = {"": 1, "B": 1, "K": 2**10, "KB": 2**10, "KIB": 2**10, "M": 2**20, "MB": 2**20, "MIB": 2**20,
              "G": 2**30, "GB": 2**30, "GIB": 2**30, "T": 2**40, "TB": 2**40, "TIB": 2**40}


def parse_size(text: str | None, flag: str = "--max-memory") -> int | None:
    """'8G' -> 8·2³⁰ bytes."""
    if text is None:
        return None
    raw = text.strip().upper()
    number = raw.rstrip("BKMGTI")
    unit = raw[len(number):]
    try:
        value = float(number)
    except ValueError:
        value = -1.0
    if unit not in SIZE_UNITS or not (0 < value < 2**60):  # also refuses nan and inf
        raise BadInput(f"{flag} {text!r} is not a size; e.g. 512M, 8G or a number of bytes")
    return int(value * SIZE_UNITS[unit])


MAX_TIMEOUT_S = 7 * 24 * 3600  # a week: beyond it a timeout means none, so give none


def choose_executor(executor: str | None, isolate: bool, timeout: float | None, max_memory: str | None, address: str | None):
    """The Executor that --executor (or its alias --isolate), --timeout, --max-memory and --address ask for.

    A worker (process or Ray) loads the same --plugin modules as this process, so plugin mechanisms run there too.
    """
    from effprof.executors import make_executor
    from effprof.measure.isolate import MIN_MAX_MEMORY

    limit = parse_size(max_memory)
    if timeout is not None and not (0 < timeout <= MAX_TIMEOUT_S):  # also refuses nan and inf
        raise BadInput(f"--timeout {timeout!r} is not a number of seconds between 0.1 and {MAX_TIMEOUT_S} (a week); "
                       "leave it out for no timeout")
    if limit is not None and limit < MIN_MAX_MEMORY:
        raise BadInput(f"--max-memory {max_memory!r} is below {MIN_MAX_MEMORY >> 20}M, too little to measure any point; "
                       "it is the memory a point may allocate beyond the worker's own (e.g. 512M, 8G)")
    if isolate and executor not in (None, "process"):
        raise BadInput(f"--isolate means --executor process; it contradicts --executor {executor}")
    # a process worker loads the plugins this process has loaded ([tool.effprof] plugins, --plugin) when it starts
    return make_executor(executor or ("process" if isolate else "local"), address, timeout, limit)


def with_compile(varied: dict[str, list[str]], compile_: bool, compile_mode: str) -> dict[str, list[str]]:
    """--compile: the varied keys plus compile=none,MODE (each point eager and compiled, as two series)."""
    from effprof.config import COMPILE_MODES

    if compile_mode not in COMPILE_MODES[1:]:
        raise BadInput(f"--compile-mode {compile_mode!r} is not a torch.compile mode; accepted: {', '.join(COMPILE_MODES[1:])}")
    if not compile_:
        if compile_mode != "default":
            raise BadInput(f"--compile-mode {compile_mode} needs --compile")
        return varied
    if "compile" in varied:
        raise BadInput("--compile and --vary compile=... both choose the compiled variants; give one")
    return {**varied, "compile": ["none", compile_mode]}


def choose_hardware(name: str | None, file: Path | None):
    """The Hardware --hardware names (built in or from --hardware-file), or None; BadInput with one line otherwise."""
    from effprof.hardware.user import HardwareError, find, load_file

    try:
        if name is None:
            if file is not None:
                load_file(file)  # a bad file is refused even when no entry of it is asked for
                raise BadInput("--hardware-file needs --hardware NAME: the entry of the file to project onto")
            return None
        return find(name, file)
    except HardwareError as e:
        raise BadInput(str(e)) from None
