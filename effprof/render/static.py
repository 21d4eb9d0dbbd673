"""Static figures for papers: every figure as SVG, PDF and PNG at a journal's column width.

Plotly draws through kaleido (>= 1.0), which drives a Chrome or Chromium installed on the machine
(``pip install 'effprof[figures]'`` and e.g. ``apt-get install chromium``). All files of one export are
written by one browser session (plotly.io.write_images), so a report's thirty-odd files take seconds,
not a browser start each.

Sizes are CSS pixels at 96 per inch, which is how Chromium prints: a ``single`` preset figure is
336 px wide and its PDF page 252 pt = 3.5 in, fonts at the preset's point size; the PNG is rendered
at 300 dpi.
"""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
import zlib
from collections.abc import Iterable
from pathlib import Path

import plotly.graph_objects as go

from effprof.render.escape import plotly_strings
from effprof.render.style import CSS_PX_PER_INCH, PNG_DPI, PRESETS, print_layout
from effprof.suggest import one_line

FORMATS = ("svg", "pdf", "png")


class StaticExportError(RuntimeError):
    """A static export that cannot be made here: the message names what is missing and how to install it."""


INSTALL_HINT = "pip install 'effprof[figures]' and install Chrome or Chromium (e.g. apt-get install chromium)"


BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def browser_path() -> str | None:
    """The Chrome or Chromium kaleido would start, or None: choreographer's own search (BROWSER_PATH, the PATH,
    kaleido's downloaded Chrome), or where that API is not there, the usual names on the PATH."""
    try:
        from choreographer.browsers.chromium import Chromium

        return Chromium.find_browser(skip_local=False)
    except (ImportError, AttributeError, TypeError):  # no choreographer, or another version of its API
        return next((path for path in map(shutil.which, BROWSER_NAMES) if path), None)


def missing_requirement() -> str | None:
    """Why static export cannot run here (kaleido or a browser missing), or None when it can."""
    try:
        import kaleido  # noqa: F401
    except ImportError:
        return f"static figures need the kaleido package: {INSTALL_HINT}"
    if browser_path() is None:
        return f"static figures need Chrome or Chromium for kaleido to drive: {INSTALL_HINT}"
    return None


def export_figures(figures: Iterable[tuple[str, go.Figure]], folder: str | Path, size: str = "single",
                   formats: Iterable[str] = FORMATS) -> list[str]:
    """Write each (name, figure) as <folder>/<name>.svg, .pdf and .png at the `size` preset; returns the paths.

    Names must be unique and made of letters, digits and '-' (figure_name makes them so).
    """
    if size not in PRESETS:
        raise ValueError(f"figure size {size!r} is not a preset; accepted: {', '.join(PRESETS)}")
    formats = list(formats)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"figure format {unknown[0]!r} is not exported; accepted: {', '.join(FORMATS)}")
    named = list(figures)
    names = [name for name, _ in named]
    bad = [n for n in names if not n or not all(ch.isalnum() or ch == "-" for ch in n)]
    if bad or len(set(names)) != len(names):
        raise ValueError(f"figure names must be unique and made of letters, digits and '-': {bad or names}")
    reason = missing_requirement()
    if reason:
        raise StaticExportError(reason)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".effprof-figures.", dir=folder))  # kaleido writes here, a folder of our own
    try:
        written = _export(named, staging, size, formats)
        for path in written:  # renamed into place: a symlink or FIFO planted at a name is replaced, never written through
            os.replace(path, folder / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [str(folder / path.name) for path in written]


def _export(named: list[tuple[str, go.Figure]], folder: Path, size: str, formats: list[str]) -> list[Path]:
    import plotly.io as pio

    preset = PRESETS[size]
    sized, paths, kinds, scales, widths, heights = [], [], [], [], [], []
    for name, fig in named:
        printed = plotly_strings(print_layout(fig, preset))  # names from data: no plotly.js markup
        for kind in formats:
            sized.append(printed)
            paths.append(folder / f"{name}.{kind}")
            kinds.append(kind)
            scales.append(PNG_DPI / CSS_PX_PER_INCH if kind == "png" else 1)
            widths.append(printed.layout.width)  # given explicitly: write_images would use plotly's default size
            heights.append(printed.layout.height)
    if not sized:
        return []
    try:
        pio.write_images(sized, paths, format=kinds, scale=scales, width=widths, height=heights)
    except Exception as e:  # noqa: BLE001  (a browser kaleido cannot start, or one that crashes mid-export)
        raise StaticExportError(f"static figures could not be exported with kaleido ({type(e).__name__}: "
                                f"{one_line(e, 200)}); {INSTALL_HINT}") from None
    for path, kind in zip(paths, kinds, strict=False):
        if kind == "png":
            set_png_dpi(path, PNG_DPI)
    return paths


def set_png_dpi(path: str | Path, dpi: int) -> None:
    """Record the resolution in the PNG (a pHYs chunk after the header), so that LaTeX's \\includegraphics
    and word processors place it at its print size (3.5 in) rather than at 72 dpi (14.6 in)."""
    path = Path(path)
    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise StaticExportError(f"{path} is not a PNG file")
    per_metre = round(dpi / 0.0254)
    body = b"pHYs" + struct.pack(">IIB", per_metre, per_metre, 1)  # unit 1: pixels per metre
    chunk = struct.pack(">I", 9) + body + struct.pack(">I", zlib.crc32(body))
    header_end = 8 + 8 + 13 + 4  # signature, IHDR length and type, its 13 bytes, its CRC
    rest = _without_chunk(data[header_end:], b"pHYs")
    path.write_bytes(data[:header_end] + chunk + rest)


def _without_chunk(chunks: bytes, kind: bytes) -> bytes:
    out, at = [], 0
    while at < len(chunks):
        length = struct.unpack(">I", chunks[at:at + 4])[0]
        end = at + 12 + length
        if chunks[at + 4:at + 8] != kind:
            out.append(chunks[at:end])
        at = end
    return b"".join(out)
