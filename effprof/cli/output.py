"""Printing for the commands: tables to stdout, progress and warnings to stderr, JSON on request."""

from __future__ import annotations

import json
import math
import shlex
import sys
from typing import Any

from rich.console import Console

class _Console(Console):
    def on_broken_pipe(self) -> None:
        """`effprof explain X | head`: the reader went away, which is no error (rich's default exits 1)."""
        from effprof.cli import _quiet_broken_pipe

        self.quiet = True
        _quiet_broken_pipe()


out = _Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err = _Console(stderr=True, highlight=False)


def command_line() -> str:
    return "effprof " + shlex.join(sys.argv[1:])


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return _plain(value.item())
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(_plain(data), indent=2, default=str) + "\n")


def frame_records(frame) -> list[dict[str, Any]]:
    return [_plain(r) for r in frame.to_dict("records")]


class Interrupted(Exception):
    """Ctrl-C or SIGTERM during a sweep; the message says what was saved and how to resume."""


def measure_with_progress(points, options, output: str | None, isolation=None, resume_hint: str = "") -> list[dict[str, Any]]:
    """Run the points with a progress bar and ETA on stderr; warn about noisy or failed points."""
    from effprof.api import run_points
    from effprof.render.console import point_label, progress_bar

    done: list[dict[str, Any]] = []
    try:
        return _measure(points, options, output, isolation, done, run_points, point_label, progress_bar)
    except KeyboardInterrupt:
        where = f" in {output}" if output else ""
        hint = f"; resume with: {resume_hint}" if resume_hint else ""
        raise Interrupted(f"interrupted after {len(done)} of {len(points)} points; the finished ones are saved{where}{hint}") from None


def _measure(points, options, output, isolation, done, run_points, point_label, progress_bar):
    with progress_bar(err, len(points)) as bar:
        task = bar.add_task("measuring", total=len(points))

        def on_record(record: dict[str, Any]) -> None:
            done.append(record)
            bar.update(task, advance=1, description=point_label(record))
            if record["status"] != "ok":
                bar.console.print(f"[yellow]{point_label(record)}: {record['status']}: {record['error']}[/]", markup=True)
            elif record.get("time_noisy"):
                bar.console.print(f"[dim]{point_label(record)}: noisy timing (IQR/median > 10%)[/]")

        return run_points(points, options, output, on_record, isolation)


def load_results(path, what: str = "results file"):
    """Records of a JSON Lines file as a DataFrame; skipped lines reported on stderr."""
    import warnings

    from effprof.cli import BadInput
    from effprof.records import read, to_frame

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = read(path)
    for w in caught:
        err.print(f"warning: {w.message}", markup=False)
    if not records:
        raise BadInput(f"{what} {str(path)!r} holds no records; make one with effprof sweep ... -o {path}")
    return to_frame(records)


def check_export_paths(latex, csv, figures, figure_size: str = "single") -> None:
    """Refuse unusable export paths before anything is measured."""
    from effprof.cli import BadInput
    from effprof.render.style import PRESETS

    for flag, path, suffix in (("--latex", latex, ".tex"), ("--csv", csv, ".csv")):
        if path is not None and path.suffix.lower() != suffix:
            raise BadInput(f"{flag} {str(path)!r} must end in {suffix}")
        if path is not None and path.is_dir():
            raise BadInput(f"{flag} {str(path)!r} is a directory; give a file path")
    if figures is not None and figures.exists() and not figures.is_dir():
        raise BadInput(f"--figures {str(figures)!r} is a file; give a folder")
    if figure_size not in PRESETS:
        raise BadInput(f"--figure-size {figure_size!r} is not a preset; accepted: {', '.join(PRESETS)}")
    if figures is not None:
        from effprof.render.static import missing_requirement

        if (reason := missing_requirement()) is not None:
            raise BadInput(f"--figures: {reason}")


def write_exports(frame, fits, latex, csv, figures, figure_size: str = "single") -> None:
    from effprof.cli import BadInput
    from effprof.render.export import ExportError, latex as latex_tables, write_csv, write_figures

    if latex is not None:
        latex.parent.mkdir(parents=True, exist_ok=True)
        latex.write_text(latex_tables(frame, fits), encoding="utf-8")
        err.print(f"LaTeX: {latex}")
    if csv is not None:
        csv.parent.mkdir(parents=True, exist_ok=True)
        err.print("CSV: " + ", ".join(write_csv(frame, fits, csv)))
    if figures is not None:
        try:
            written = write_figures(frame, fits, figures, figure_size)
        except ExportError as e:
            raise BadInput(str(e)) from None
        err.print(f"figures: {len(written)} files in {figures}")
