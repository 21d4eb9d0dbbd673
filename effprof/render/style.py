"""How every effprof figure looks: one style per series, spread and noise marks, screen and print layouts.

One place decides what a reader of the report or of a paper sees, so that the HTML report and the
static exports (``--figures``) agree:

- **Axes** are in effprof.render.axes: one unit per axis, ticks at the measured sizes, titles with units.
- **Series.** One colour and one marker symbol per series (``series_styles``), computed once per
  report from its frame (``report_styles``), so a mechanism keeps its colour in every figure. The
  colours are the Okabe–Ito palette (distinguishable with the common colour-vision deficiencies);
  the markers and line dashes keep the figure readable in greyscale: measured points are markers
  on a solid line, the analytic cost a dotted line (``ANALYTIC_DASH``), the fitted slope a dashed
  one (``FIT_DASH``).
- **Spread.** Time carries error bars from its measured spread (``time_error_bars``): the
  interquartile range of the per-call block times where a record keeps them (``time_samples_s``),
  else its ``time_iqr_s`` about the median. Noisy points (``time_noisy``) are ringed with ``noisy_marker()``.
- **Layouts.** ``screen_layout`` for the HTML report (title left, below plotly's toolbar);
  ``print_layout`` for a paper: the ``single`` (3.5 in) or ``double`` (7 in) column preset, fonts
  in points to match, no title (the caption is the paper's), the legend above the plot.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from effprof.analyse.frames import add_labels, swept_axis
from effprof.render.axes import Unit

# Okabe & Ito (2008), "Color Universal Design": safe for protanopia, deuteranopia and tritanopia.
# Yellow and black come last: yellow is faint on white, black is the colour of the style-key lines.
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
# Filled symbols that stay apart in greyscale; a series keeps its symbol in every figure.
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "triangle-down", "pentagon", "hexagon", "star", "cross", "x")
MEASURED_DASH = "solid"
# measured lines drawn over an earlier series with the same values (mamba and mamba2's decode state): each one
# that overlaps gets the next of these, so every line stays visible under the others (never dot or dash: those
# are the analytic cost and the fitted slope)
OVERLAP_DASHES = ("longdash", "dashdot", "longdashdot", "5px,3px,1px,3px")
OVERLAP_TOLERANCE = 0.01  # relative: values within 1% at every shared size draw on top of each other
ANALYTIC_DASH = "dot"
FIT_DASH = "dash"
KEY_RANK = 2000  # legend order: the series first (plotly's default rank is 1000), then what line styles and rings mean
KEY_COLOR = "#444444"  # the legend entries that explain line styles, and the roof of the roofline
FONT_FAMILY = "Arial, 'Liberation Sans', Helvetica, sans-serif"
CSS_PX_PER_INCH = 96  # plotly sizes are CSS pixels; Chromium prints 96 of them per inch
PT_PER_INCH = 72


@dataclass(frozen=True)
class SeriesStyle:
    """The colour and marker symbol of one series, the same in every figure of a report."""

    color: str
    symbol: str


@dataclass(frozen=True)
class Preset:
    """A print size: the figure's width and height in inches and its font size in points."""

    name: str
    width_in: float
    height_in: float
    font_pt: float

    @property
    def width_px(self) -> int:
        return round(self.width_in * CSS_PX_PER_INCH)

    @property
    def height_px(self) -> int:
        return round(self.height_in * CSS_PX_PER_INCH)

    @property
    def font_px(self) -> float:
        return self.font_pt * CSS_PX_PER_INCH / PT_PER_INCH


# A journal column is about 3.3-3.5 in wide, a full page width about 7 in; body text at 8-10 pt.
PRESETS = {
    "single": Preset("single", 3.5, 2.7, 8.0),
    "double": Preset("double", 7.0, 3.6, 9.0),
}
PNG_DPI = 300  # raster exports at print resolution


def series_colors(series_names: Iterable[str]) -> dict[str, str]:
    """One Okabe–Ito colour per series, in order of first appearance (cycling beyond eight)."""
    return {name: style.color for name, style in series_styles(series_names).items()}


def series_styles(series_names: Iterable[str]) -> dict[str, SeriesStyle]:
    """Colour and marker symbol per series, in order of first appearance.

    Colours cycle every 8 and symbols every 10, so the first 40 series differ in at least one of the two.
    """
    names = list(dict.fromkeys(series_names))
    return {name: SeriesStyle(OKABE_ITO[i % len(OKABE_ITO)], SYMBOLS[i % len(SYMBOLS)]) for i, name in enumerate(names)}


def report_styles(frame: pd.DataFrame) -> dict[str, SeriesStyle]:
    """The series styles of a whole report: labelled as every figure labels them (frames.add_labels on the
    ok records, by the swept axis), so the same series gets the same colour in all of them."""
    ok = frame[frame["status"] == "ok"] if "status" in frame.columns else frame
    if ok.empty or "mechanism" not in ok.columns:
        return {}
    return series_styles(add_labels(ok, swept_axis(ok))["series"])


def overlapping(values: dict[float, float], drawn: dict[str, dict[float, float]]) -> list[str]:
    """The series already drawn that `values` (y by x, in the axis unit) would hide or be hidden by: equal within
    OVERLAP_TOLERANCE at every size they share, at two sizes or more."""
    out = []
    for name, other in drawn.items():
        shared = [x for x in values if x in other]
        if len(shared) >= 2 and all(abs(values[x] - other[x]) <= OVERLAP_TOLERANCE * max(abs(other[x]), 1e-300) for x in shared):
            out.append(name)
    return out


def noisy_marker() -> dict[str, Any]:
    """The marker ringing a point whose timing is noisy (IQR above 10% of the median): an open circle
    larger than any series marker, in the key colour, so it reads the same in colour and in greyscale."""
    return {"symbol": "circle-open", "size": 15, "color": KEY_COLOR, "line": {"width": 1.2, "color": KEY_COLOR}}


NOISY_NAME = "noisy (IQR > 10%)"


def noisy_trace(x: Sequence[float], y: Sequence[float], show_legend: bool = True) -> go.Scatter:
    """Rings around the noisy points at (x, y) (y already in the axis unit); one legend entry per figure."""
    return go.Scatter(x=list(x), y=list(y), mode="markers", name=NOISY_NAME, legendgroup="noisy", showlegend=show_legend,
                      legendrank=KEY_RANK + 2, marker=noisy_marker(), hoverinfo="skip")


def time_error_bars(rows: pd.DataFrame, unit: Unit) -> dict[str, Any] | None:
    """Asymmetric error bars spanning the interquartile range of each point's time, in `unit`.

    From the record's per-call block times (``time_samples_s``) where present: the bar runs from
    their 25th to 75th percentile, taken relative to their median and applied to ``time_s`` (so a
    decode record's per-token time gets its samples' spread whatever unit they are kept in). Else ± half of ``time_iqr_s``, except that the
    lower side stops at half the median and the upper side takes the rest (a noisy point's IQR can exceed
    its median; a bar below zero would leave a log axis). A
    point with neither gets no bar; with no spread anywhere there are no bars at all (None).
    """
    plus, minus, any_bar = [], [], False
    samples = rows["time_samples_s"] if "time_samples_s" in rows.columns else [None] * len(rows)
    iqrs = rows["time_iqr_s"] if "time_iqr_s" in rows.columns else [None] * len(rows)
    for median, sample, iqr in zip(rows["time_s"], samples, iqrs, strict=False):
        up = down = float("nan")
        values = [float(s) for s in sample if s is not None and math.isfinite(float(s))] if isinstance(sample, (list, tuple)) else []
        center = _quantile(values, 0.5) if len(values) >= 2 else 0.0
        if center > 0:  # quartiles relative to the samples' median, applied to time_s: the same whether the
            # samples are per call or per block of calls (decode divides time_s by the tokens generated)
            q25, q75 = _quantile(values, 0.25) / center, _quantile(values, 0.75) / center
            up, down = float(median) * max(q75 - 1, 0.0), float(median) * max(1 - q25, 0.0)
        elif iqr is not None and isinstance(iqr, (int, float)) and math.isfinite(float(iqr)) and iqr >= 0:
            down = min(float(iqr) / 2, float(median) / 2)  # a time is positive (and its spread skews slow):
            up = float(iqr) - down  # the bar keeps the IQR's length but never reaches below half the median
        if not math.isnan(up):
            any_bar = True
        plus.append(None if math.isnan(up) else up / unit.scale)
        minus.append(None if math.isnan(down) else down / unit.scale)
    if not any_bar:
        return None
    return {"type": "data", "symmetric": False, "array": plus, "arrayminus": minus, "thickness": 1, "width": 3}


def bar_ends(ys: Sequence[float], bars: dict[str, Any]) -> list[float]:
    """The tops and bottoms of the error bars on `ys`, so an axis range can include them."""
    ends = []
    for y, up, down in zip(ys, bars["array"], bars["arrayminus"], strict=False):
        ends += [y + up] if up is not None else []
        ends += [y - down] if down is not None and y - down > 0 else []
    return ends


def _quantile(values: Sequence[float], q: float) -> float:
    """The q-quantile with linear interpolation (numpy's default), without numpy."""
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def style_key_traces(analytic: bool, fit: bool) -> list[go.Scatter]:
    """Legend entries that say what the line styles mean (one each, in the key colour): the colours name
    the series, these name the kinds of line."""
    out = []
    if analytic:
        out.append(go.Scatter(x=[None], y=[None], mode="lines", name="analytic cost", legendgroup="key", legendrank=KEY_RANK,
                              line={"color": KEY_COLOR, "dash": ANALYTIC_DASH, "width": 1.5}, hoverinfo="skip"))
    if fit:
        out.append(go.Scatter(x=[None], y=[None], mode="lines", name="fitted slope", legendgroup="key", legendrank=KEY_RANK + 1,
                              line={"color": KEY_COLOR, "dash": FIT_DASH, "width": 1.5}, hoverinfo="skip"))
    return out


SCREEN_MARGIN = {"l": 70, "r": 20, "t": 72, "b": 55}


def screen_layout(fig: go.Figure, title: str, height: int = 420) -> go.Figure:
    """The report's look: white template, the title left-aligned below plotly's toolbar (which sits at
    the top right of the figure, in the top margin), the legend to the right of the plot."""
    fig.update_layout(
        template="plotly_white", height=height, font={"family": FONT_FAMILY},
        title={"text": title, "x": 0, "xref": "paper", "xanchor": "left", "y": 1, "yref": "paper", "yanchor": "bottom",
               "pad": {"b": 12}, "font": {"size": 15}},
        margin=SCREEN_MARGIN, legend={"font": {"size": 11}},
    )
    return fig


def print_layout(fig: go.Figure, preset: Preset | str = "single") -> go.Figure:
    """A copy of `fig` sized for a paper: the preset's width, height and font, no title, thin lines,
    the legend in rows above the plot (never over the data), axes framed, a light grid."""
    preset = PRESETS[preset] if isinstance(preset, str) else preset
    out = copy.deepcopy(fig)
    small = preset.font_px
    columns, rows = compact_legend(out, preset)
    out.update_layout(
        template="simple_white", width=preset.width_px, height=preset.height_px + rows * legend_row_px(preset),
        title={"text": ""}, font={"family": FONT_FAMILY, "size": small, "color": "#000000"},
        margin={"l": 4, "r": 6, "t": 4, "b": 4, "pad": 0},
        legend={"orientation": "h", "x": 0, "xanchor": "left", "y": 1.02, "yanchor": "bottom",
                "font": {"size": small * LEGEND_FONT}, "itemwidth": 30, "tracegroupgap": 0, "bgcolor": "rgba(0,0,0,0)",
                "entrywidthmode": "fraction", "entrywidth": 1 / columns if columns else 0},
        showlegend=any(t.showlegend is not False for t in out.data) and len(out.data) > 1,
    )
    frame = {"showline": True, "mirror": True, "linewidth": 0.75, "ticks": "outside", "ticklen": 3, "tickwidth": 0.75,
             "showgrid": True, "gridcolor": "#e5e5e5", "gridwidth": 0.5, "automargin": True,
             "title": {"font": {"size": small}, "standoff": 4}, "tickfont": {"size": small}}
    out.update_xaxes(**frame)
    out.update_yaxes(**frame)
    for trace in out.data:
        if isinstance(trace, go.Scatter):
            ring = trace.legendgroup == "noisy"
            if trace.marker is not None and trace.marker.size is not None and not ring:
                size = trace.marker.size  # one size, or one per point (the roofline's growth markers)
                trace.marker.size = [min(s, 5) for s in size] if isinstance(size, (list, tuple)) else min(size, 5)
            if trace.marker is not None and ring:
                trace.marker.size = 9
                trace.marker.line.width = 0.8
            if trace.line is not None and trace.line.width is not None:
                trace.line.width = min(trace.line.width, 1.2)
            elif trace.line is not None:
                trace.line.width = 1.2
            if trace.error_y is not None and trace.error_y.array is not None:
                trace.error_y.thickness, trace.error_y.width = 0.75, 2
        elif isinstance(trace, go.Heatmap):  # a square map: as tall as it is wide, a slim colour bar, no grid over it
            out.update_layout(height=round(preset.width_px * 0.92))
            out.update_xaxes(showgrid=False)
            out.update_yaxes(showgrid=False)
            trace.colorbar.update(thickness=8, outlinewidth=0, title={"font": {"size": small}}, tickfont={"size": small})
    return out


LEGEND_FONT = 0.85  # legend text against the figure's font
LEGEND_SHARE = 0.2  # the most of a print figure's height its legend may take
MIN_ENTRY_CHARS = 12  # an entry is never cut shorter than this
ENTRY_SYMBOL_PX = 30  # the line-and-marker sample before each entry's text


def legend_row_px(preset: Preset) -> float:
    return preset.font_px * LEGEND_FONT * 1.35


def compact_legend(fig: go.Figure, preset: Preset) -> tuple[int, int]:
    """Lay the print legend out in equal columns above the plot, few enough rows to keep it within LEGEND_SHARE of the
    figure's height (at 3.5 in a legend of one entry a row took a quarter of it); entries longer than a column are
    cut in the middle with an ellipsis (both ends name a series: 'softmax_at…[chunked]'), distinct still. The plot
    area keeps its height. Returns (columns, rows); (0, 0) without a legend."""
    entries = [t for t in fig.data if t.showlegend is not False and (t.name or "")]
    if len(entries) < 2:
        return 0, 0
    char = preset.font_px * LEGEND_FONT * 0.55  # about 0.55 em a character
    longest = max(len(t.name) for t in entries)
    row = legend_row_px(preset)

    def chars(columns: int) -> int:  # characters of text an entry has room for
        return int(((preset.width_px - 10) / columns - ENTRY_SYMBOL_PX) // max(char, 1e-9))

    def small(columns: int) -> bool:
        rows = math.ceil(len(entries) / columns)
        return rows * row <= LEGEND_SHARE * (preset.height_px + rows * row)

    usable = [c for c in range(1, 5) if c == 1 or chars(c) >= MIN_ENTRY_CHARS]
    whole = [c for c in usable if chars(c) >= longest and small(c)]  # every name whole, the legend small enough
    cut = [c for c in usable if small(c)]  # small enough with names cut to fit
    chosen = whole[0] if whole else cut[0] if cut else usable[-1]
    names = [_cut_middle(t.name, max(chars(chosen), MIN_ENTRY_CHARS)) for t in entries]
    if len(set(names)) == len(names):
        for trace, name in zip(entries, names, strict=True):
            if name != trace.name:
                trace.hovertemplate = trace.hovertemplate.replace("%{fullData.name}", trace.name) if trace.hovertemplate else None
                trace.name = name
    return chosen, math.ceil(len(entries) / chosen)


def _cut_middle(text: str, width: int) -> str:
    """`text` within `width` characters, an ellipsis in the middle when cut."""
    if len(text) <= width:
        return text
    head = (width - 1 + 1) // 2
    tail = width - 1 - head
    return text[:head].rstrip() + "…" + (text[-tail:].lstrip() if tail > 0 else "")
