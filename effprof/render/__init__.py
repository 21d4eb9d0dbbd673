"""The render stage: every output is a function of a Session, through one interface (no torch here).

    render(session, RenderOptions(format="html")) -> the page's text

Formats and what `render` returns:

    console   the rich renderables `effprof compare` prints (the short summary, or every table with verbose=True)
    html      the self-contained report page (html.py, templates/)
    latex     booktabs tables for a paper (export.py)
    csv       writes records, fits, crossovers and module fits as CSV beside `path`; the paths written
    figures   writes every figure as SVG, PDF and PNG into the folder `path`; the paths written

A renderer reads the Session and nothing else: no fit, aggregation or recount happens here (analyse does those,
once); a DataFrame or a list of records is refused (analyse them first: effprof.analyse.session.analyse).
ARCHITECTURE.md § Code map.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMATS = ("console", "html", "latex", "csv", "figures")


@dataclass(frozen=True)
class RenderOptions:
    """How to render. `format`: one of FORMATS. `report`: where the HTML report is (console names it); `baseline_series`:
    a series to show ratios against (console); `verbose`: every table (console); `plotlyjs`: inline, cdn or directory
    (html); `path`: the file (csv) or folder (figures) to write; `figure_size`: a column-width preset (figures)."""

    format: str = "console"
    report: str = ""
    baseline_series: str | None = None
    verbose: bool = False
    plotlyjs: str = "inline"
    path: str | Path | None = None
    figure_size: str = "single"


def render(session: Any, options: RenderOptions = RenderOptions()) -> Any:
    """`session` rendered as `options.format` says (the table above). TypeError for anything but a Session;
    ValueError for an unknown format or a file format without a path."""
    from effprof.analyse.session import Session

    if not isinstance(session, Session):
        raise TypeError(f"a renderer takes a Session (effprof.analyse.session.analyse(records) makes one), not {type(session).__name__}")
    if options.format not in FORMATS:
        raise ValueError(f"format {options.format!r} is not one of {', '.join(FORMATS)}")
    if options.format in ("csv", "figures") and options.path is None:
        raise ValueError(f"format {options.format!r} writes files: give RenderOptions(path=...)")
    if options.format == "console":
        from effprof.render import console

        return console.render(session, options)
    if options.format == "html":
        from effprof.render import html

        return html.render(session, options.plotlyjs)
    from effprof.render import export

    if options.format == "latex":
        return export.latex(session)
    if options.format == "csv":
        return export.write_csv(session, options.path)
    return export.write_figures(session, options.path, options.figure_size)
