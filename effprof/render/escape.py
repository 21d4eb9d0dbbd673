"""Escaping for every output format, one function per format (no torch, no rendering).

Strings in records come from users, plugins and results files that anyone can craft, so
every string that reaches an output passes through the function for that output:

    terminal(text)  printable text only: control characters (ESC sequences that retitle or
                    clear a terminal, OSC 8 links, bells, carriage returns) are removed
    tex(text)       LaTeX: the ten special characters escaped in one pass, so a backslash
                    prints as a backslash and `\\input{...}` stays text; [ ] * braced (a table row's
                    \\\\ would take them as its argument), < > | as text symbols (any font encoding)
    csv_cell(value) spreadsheets: a string starting with = + - @ (or a tab / carriage return)
                    is prefixed with ' so it is never evaluated as a formula
    xml_text(text)  XML 1.0: the characters it cannot carry at all are removed
    plotly_text(text)  a string plotly.js draws (trace names, hover text, titles): plotly.js reads tags
                    in them (<a href>, <b>, <span style>), so & < > become entities and print as themselves;
                    `plotly_strings(fig)` does it to a figure's trace names and title (report and static figures)

HTML is escaped by jinja2's autoescaping in render/html.py. Rich markup is never parsed
from data: renderers build `rich.text.Text` from data strings (see `plain`).
"""

from __future__ import annotations

import re
from typing import Any

# C0 controls except tab and newline, DEL, and C1 controls (which include the 8-bit CSI 0x9b), and lone
# surrogates (JSON's "\\ud800" reads as one, and no UTF-8 file or terminal can take it);
# ANSI escape sequences are removed whole first, so no stray "[31m" remains.
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")

_TEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    # not special, but misread in a table or an old font encoding: after a row's \\ a cell starting with
    # [ or * is taken as the row's argument (\\[5cm], \\*); OT1 prints < > | as ¡ ¿ —
    "[": "{[}",
    "]": "{]}",
    "*": "{*}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
    "²": r"\textsuperscript{2}",
    "³": r"\textsuperscript{3}",
    "·": r"\ensuremath{\cdot}",
    "φ": r"\ensuremath{\phi}",
    "≤": r"\ensuremath{\leq}",
    "≥": r"\ensuremath{\geq}",
    "≈": r"\ensuremath{\approx}",
    "×": r"\ensuremath{\times}",
    "µ": r"\ensuremath{\mu}",
}
_TEX_TABLE = str.maketrans(_TEX)

CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def terminal(text: Any) -> str:
    """`text` with escape sequences and control characters removed; newlines become spaces."""
    out = _ANSI.sub("", str(text))
    return _CONTROL.sub("", out.replace("\r\n", " ").replace("\n", " ").replace("\t", " "))


def plain(text: Any, style: str = ""):
    """A rich Text holding `text` as it is (after `terminal`): never parsed as markup."""
    from rich.text import Text

    return Text(terminal(text), style=style)


def tex(text: Any) -> str:
    """`text` for a LaTeX document: every special character escaped, control characters removed."""
    return terminal(text).translate(_TEX_TABLE)


def csv_cell(value: Any) -> Any:
    """A CSV cell that no spreadsheet evaluates: strings that would start a formula get a leading '."""
    if isinstance(value, str):
        value = terminal(value)
        if value.lstrip(" ").startswith(CSV_FORMULA_START):  # spreadsheets skip leading blanks
            return "'" + value
    return value


def html_text(text: Any) -> str:
    """`text` as HTML text or an attribute value (quotes too), for markup built outside the report's Jinja
    template, whose autoescape does the same for everything it renders."""
    import html

    return html.escape(str(text), quote=True)


def xml_text(text: Any) -> str:
    """`text` without the characters XML 1.0 cannot carry (ElementTree would write an unparsable file)."""
    return _XML_INVALID.sub("", str(text))


def plotly_text(text: Any) -> str:
    """`text` as plotly.js text: control characters removed, & < > as entities (plotly.js shows them as
    themselves), so a name from data never becomes a link, a style or a line break in a figure."""
    return terminal(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plotly_template_text(text: Any) -> str:
    """`text` inside a plotly hover template: plotly_text, and no %{…} placeholder of its own."""
    return plotly_text(text).replace("%", "&#37;")


def plotly_strings(fig):
    """`fig`'s trace names and title through plotly_text, in place (series labels and titles name mechanisms,
    modules and configs from data; effprof writes no markup in them); returns `fig`."""
    for trace in fig.data:
        if isinstance(getattr(trace, "name", None), str):
            trace.name = plotly_text(trace.name)
    title = fig.layout.title.text
    if isinstance(title, str):
        fig.layout.title.text = plotly_text(title)
    return fig
