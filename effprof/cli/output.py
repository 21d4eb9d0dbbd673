"""Printing for the commands: tables to stdout, progress and warnings to stderr, JSON on request."""

from __future__ import annotations

import json
import math
import shlex
import sys
from typing import Any

from rich.console import Console

out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False)


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
