"""Printing for the commands: tables to stdout, progress and warnings to stderr, JSON on request."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import sys
import warnings
from pathlib import Path
from typing import Any

from rich.console import Console

from effprof.render.escape import plain
from effprof.store.records import json_ready


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """`effprof explain X | head`: the reader went away, which is no error (rich's default exits 1)."""
        from effprof.cli import _quiet_broken_pipe

        self.quiet = True
        _quiet_broken_pipe()


# Piped output (a file, `| cat`, `| head`, CI logs) is not wrapped at rich's 80-column fallback: a table is laid
# out for a 160-column page and each message is one line. A terminal (or $COLUMNS) sets its own width.
PIPED_WIDTH = 160


def _width(stream) -> int | None:
    return None if stream.isatty() or os.environ.get("COLUMNS", "").strip().isdigit() else PIPED_WIDTH


out = _Console(highlight=False, width=_width(sys.stdout))
err = _Console(stderr=True, highlight=False, width=_width(sys.stderr))


def command_line() -> str:
    return "effprof " + shlex.join(sys.argv[1:])


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(json_ready(data), indent=2, default=str) + "\n")


def print_frame_json(frame) -> None:
    """A DataFrame as a JSON list of row objects (NaN as null), written by pandas' C encoder: the same JSON
    as print_json of the rows, without a Python object per value (25k series' fits in 1 s, not 9 s)."""
    sys.stdout.write(frame.to_json(orient="records", double_precision=15, indent=2, force_ascii=False) + "\n")


class Interrupted(Exception):
    """Ctrl-C or SIGTERM during a sweep; the message says what was saved and how to resume."""


def check_output_file(path: Path, flag: str, append: bool = False) -> None:
    """Refuse an output path that cannot take a file, before anything is measured: the one check of every file
    effprof writes, side files included (`results.jsonl.corrupt`, the CSV's `_fits.csv`, `_crossovers.csv` and `_module_fits.csv`,
    `results.session.json`, plotly.min.js, JUnit XML, LaTeX; see side_files).

    A directory, a FIFO or a device (/dev/full, a terminal) is refused, since results are appended to (and
    reports replace) a regular file; so is a folder that cannot be created or written, a read-only file, and
    a file system with no free space (a symbolic link is judged by what it points to). A symbolic link is never
    written through: a file that is appended to (`append`) may not be one; a file written whole replaces the
    link itself (records.atomic_writer). Creates the parent folder where it is missing.
    """
    import os
    import stat
    import tempfile

    from effprof.cli import BadInput

    shown = repr(str(path))
    if append and path.is_symlink():
        raise BadInput(f"{flag} {shown} is a symbolic link; effprof does not append through one: give the file itself")
    if path.is_dir():
        raise BadInput(f"{flag} {shown} is a directory; give a file path")
    if path.exists() and not stat.S_ISREG(path.stat().st_mode):
        raise BadInput(f"{flag} {shown} is not a regular file (a FIFO, socket or device); give a file path")
    parent = path.parent if str(path.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise BadInput(f"{flag} {shown}: {str(parent)!r} is not a directory")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and not os.access(path, os.W_OK):
            raise PermissionError(13, "the file is read-only")
        with tempfile.TemporaryFile(dir=parent):  # can a file be created there at all (read-only mounts)
            pass
        if os.statvfs(parent).f_bavail == 0:
            raise OSError(28, "No space left on device")
    except OSError as e:
        raise BadInput(f"{flag} {shown} cannot be written: {e.strerror or e}") from None


def check_results_file(path: Path, flag: str) -> None:
    """check_output_file for a results file that records are appended to, and for the side file its cut lines go to."""
    from effprof.store.records import corrupt_path

    check_output_file(path, flag, append=True)
    check_output_file(corrupt_path(path), f"{flag} side file", append=True)


def new_partial_file(results: Path) -> str:
    """A new, empty file beside `results` (unique name) for a sweep that replaces `results` when it finishes."""
    import os
    import tempfile

    from effprof.store.records import _umask

    fd, name = tempfile.mkstemp(prefix=results.stem + ".", suffix=".partial.jsonl", dir=results.parent)
    os.close(fd)
    os.chmod(name, 0o666 & ~_umask())  # mkstemp makes it private; the results file it becomes is an ordinary file
    return name


def measure_with_progress(points, options, output: str | None, executor=None, resume_hint: str = "") -> list[dict[str, Any]]:
    """Run the points with a progress bar and ETA on stderr; summarise noisy, failed and busy points once."""
    from effprof.cli import BadInput
    from effprof.render.console import point_label, progress_bar
    from effprof.runner import run_points
    from effprof.store.records import StoreError

    done: list[dict[str, Any]] = []
    hint = f"; resume with: {resume_hint}" if resume_hint else ""
    try:
        with _warnings_to_stderr():
            _measure(points, options, output, executor, done, run_points, point_label, progress_bar)
    except KeyboardInterrupt:
        saved = f"the {len(done)} finished ones are saved in {output}" if output else "nothing was saved (no output file)"
        raise Interrupted(f"interrupted after {len(done)} of {len(points)} points; {saved}{hint}") from None
    except StoreError as e:
        raise BadInput(f"cannot append to {e.filename}: {e.strerror}; the {len(done)} records before it are saved; "
                       f"free space or fix the file{hint}") from None
    finally:
        for line in sweep_warnings(done):
            err.print(plain(line), soft_wrap=True)
    return done


def sweep_warnings(records: list[dict[str, Any]]) -> list[str]:
    """One line per kind of trouble in a sweep, with its count; the details are in the records.

    Failed points (by status), points with noisy timing (IQR/median > 10%), and points measured while the
    machine was busy (1-minute load average at or above its core count: `load_avg_1m` and `cpu_count`).
    """
    lines = []
    failed: dict[str, int] = {}
    for record in records:
        if record.get("status") != "ok":
            failed[record.get("status", "error")] = failed.get(record.get("status", "error"), 0) + 1
    if failed:
        counts = ", ".join(f"{n} {status}" for status, n in failed.items())
        lines.append(f"warning: {sum(failed.values())} of {len(records)} points failed ({counts}); "
                     "their records carry the error")
    from effprof.store.metrics import is_busy, is_noisy

    noisy = sum(1 for r in records if r.get("status") == "ok" and is_noisy(r))  # the one rule on its figures, as every output
    if noisy:
        lines.append(f"warning: {noisy} of {len(records)} points have noisy timing (IQR/median > 10%); "
                     "their records are flagged time_noisy")
    changed: dict[tuple[str, str], int] = {}  # torch settings a mechanism's code changed (restored: runtime/guard.py)
    for record in records:
        for warning in record.get("warnings") or ():
            key = (str(record.get("mechanism")), warning)
            changed[key] = changed.get(key, 0) + 1
    for (mechanism, warning), n in changed.items():
        lines.append(f"warning: {mechanism}: {warning} ({n} of {len(records)} points; their records carry it in warnings)")
    busy = [r for r in records if is_busy(r)]
    if busy:
        worst = max(r["load_avg_1m"] for r in busy)
        lines.append(f"warning: the machine was busy during {len(busy)} of {len(records)} points (load average up to "
                     f"{worst:.1f} on {busy[0]['cpu_count']} cores); their times may be inflated")
    return lines


def _measure(points, options, output, executor, done, run_points, point_label, progress_bar) -> None:
    with progress_bar(err, len(points)) as bar:
        task = bar.add_task("measuring", total=len(points))

        def on_record(record: dict[str, Any]) -> None:
            done.append(record)
            bar.update(task, advance=1, description=point_label(record))

        run_points(points, options, output, on_record, executor=executor)


@contextlib.contextmanager
def _warnings_to_stderr():
    """Print the warnings raised inside as `warning: ...` lines (each distinct one once), not as Python warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            quiet = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)  # hidden by Python's defaults too
            for message in dict.fromkeys(str(w.message) for w in caught if not issubclass(w.category, quiet)):
                err.print(plain(f"warning: {message}"), soft_wrap=True)


def read_records(path, what: str = "results file") -> list[dict[str, Any]]:
    """The records of a JSON Lines file; each skipped line reported on stderr with its line number."""
    from effprof.store.records import read

    with _warnings_to_stderr():
        return read(path)


def warn_mixed_machines(records) -> None:
    """Say so on stderr when the records come from more than one kind of machine (their times do not mix)."""
    from effprof.executors.machines import mixed_machines_warning

    warning = mixed_machines_warning(records)
    if warning:
        err.print(plain(f"warning: {warning}"), soft_wrap=True)


def load_results(path, what: str = "results file"):
    """Records of a JSON Lines file as a DataFrame; skipped lines reported on stderr."""
    from effprof.cli import BadInput
    from effprof.store.records import read_frame

    with _warnings_to_stderr():
        frame = read_frame(path)  # as columns: 300k records are never all dicts at once
    if frame.empty:
        raise BadInput(f"{what} {str(path)!r} holds no records; make one with effprof sweep ... -o {path}")
    return frame


def check_export_paths(latex, csv, figures, figure_size: str = "single", plotlyjs_beside: Path | None = None) -> None:
    """Refuse unusable export paths before anything is measured: --latex, --csv and its side files
    (`<stem>_fits.csv`, `<stem>_crossovers.csv`, `<stem>_module_fits.csv`), --figures, and plotly.min.js beside a --plotlyjs directory report."""
    from effprof.cli import BadInput
    from effprof.render.export import csv_paths
    from effprof.render.style import PRESETS

    for flag, path, suffix in (("--latex", latex, ".tex"), ("--csv", csv, ".csv")):
        if path is not None and path.suffix.lower() != suffix:
            raise BadInput(f"{flag} {str(path)!r} must end in {suffix}")
        if path is not None:
            check_output_file(path, flag)
    if csv is not None:
        for side in csv_paths(csv)[1:]:
            check_output_file(side, "--csv side file")
    if plotlyjs_beside is not None:
        from effprof.render.html import BUNDLE

        check_output_file(plotlyjs_beside.parent / BUNDLE, "--plotlyjs directory: the bundle")
    if figures is not None and figures.exists() and not figures.is_dir():
        raise BadInput(f"--figures {str(figures)!r} is a file; give a folder")
    if figures is not None and figures.is_symlink():
        raise BadInput(f"--figures {str(figures)!r} is a symbolic link; give the folder itself")
    if figure_size not in PRESETS:
        raise BadInput(f"--figure-size {figure_size!r} is not a preset; accepted: {', '.join(PRESETS)}")
    if figures is not None:
        from effprof.render.static import missing_requirement

        if (reason := missing_requirement()) is not None:
            raise BadInput(f"--figures: {reason}")


def say(message: str) -> None:
    """One line of text from data on stderr, escaped (render.escape.plain): what a library step tells the user."""
    err.print(plain(message), soft_wrap=True)
