"""Figures a journal would take: units on every axis, ticks at the measured sizes, one style per series in
every figure, spread and noise shown, and the static exports (SVG, PDF, PNG) at a column's width."""

from __future__ import annotations

import math
import re
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from typer.testing import CliRunner

from effprof.analyse.fit import fit_frame
from effprof.cli import app
from effprof.render import axes, static, style
from effprof.render.export import write_figures
from effprof.render.figures import expert_load_figure, metric_figures
from effprof.render.patterns import pattern_figure
from effprof.render.roofline import roofline_figures

SIZES = (256, 512, 1024, 2048)


def _frame() -> pd.DataFrame:
    """Three mechanisms × three modes × four sizes with every field a figure reads; an MoE series with expert
    load; the roofline fields on all but softmax_attention (so its series is missing from the roofline)."""
    rng = np.random.default_rng(0)
    rows = []
    for mechanism, p in (("softmax_attention", 2.0), ("linear_attention", 1.0), ("moe_topk", 1.0)):
        for mode in ("forward", "train", "decode"):
            for n in SIZES:
                t = 1e-7 * n**p if mode != "decode" else 2e-6 * n ** (p - 1)
                noisy = mechanism == "linear_attention" and n == 1024  # IQR/median 20% here, 4% elsewhere
                row = {"mechanism": mechanism, "family": "moe" if mechanism == "moe_topk" else "attention", "mode": mode,
                       "seq_len": n, "status": "ok", "flops_counted": 4e3 * n**p, "flops_analytic": 4e3 * n**p,
                       "time_s": t, "time_iqr_s": (0.2 if noisy else 0.04) * t,
                       "time_samples_s": list(t * (1 + 0.05 * rng.standard_normal(7))), "time_noisy": noisy,
                       "peak_bytes": 64.0 * n**p, "state_bytes": 4096.0 * (n if p == 2 else 16),
                       "claims": [["flops", "seq_len", p, 0.0]]}
                if mode == "train":
                    row["activation_bytes"] = 128.0 * n**p
                if mechanism != "softmax_attention":
                    row.update(arithmetic_intensity=2.0 + n / 512, achieved_flops_per_s=3e9 * (1 + n / 1024),
                               peak_flops_per_s=1e11, peak_bytes_per_s=1e10)
                if mechanism == "moe_topk":
                    row["expert_load"] = [n // 4 + i for i in range(4)]
                rows.append(row)
    return pd.DataFrame(rows)


def _pattern(n: int = 64, window: int = 8) -> dict:
    """pattern_data's shape for a causal local window, built here without torch."""
    rows, cols = zip(*[(q, k) for q in range(n) for k in range(max(0, q - window + 1), q + 1)], strict=False)
    return {"name": "sliding_window", "n": n, "rows": np.array(rows), "cols": np.array(cols), "pairs": len(rows),
            "density": len(rows) / (n * (n + 1) / 2), "causal": True, "config": {"window": window}}


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return _frame()


@pytest.fixture(scope="module")
def fits(frame) -> pd.DataFrame:
    return fit_frame(frame)


@pytest.fixture(scope="module")
def figures(frame, fits) -> list[tuple[str, str, go.Figure]]:
    return metric_figures(frame, fits)


# --- units and ticks -------------------------------------------------------------------------------


def test_one_unit_per_axis_picked_from_the_range():
    assert axes.unit_for("time", [4e-5, 3e-1]).symbol == "ms"  # 0.04 … 300 ms, not µs and ms mixed
    assert axes.unit_for("time", [2e-6, 9e-6]).symbol == "µs"
    assert axes.unit_for("flops", [1e6, 6.5e10]).symbol == "GFLOP"  # 0.001 … 65, not 10⁴ MFLOP
    assert axes.unit_for("bytes", [3 * 2**20, 700 * 2**20]).symbol == "MiB"
    assert axes.unit_for("bytes", [2**30, 5 * 2**30]).scale == 2**30  # binary units, as the tables print them
    assert axes.unit_for("time", []).symbol == "ns"  # nothing positive: the base of the ladder, no crash
    assert axes.axis_title(axes.metric_label("time_s", "decode"), axes.Unit("ms", 1e-3)) == "time per generated token (ms)"


def test_a_metric_without_a_unit_is_refused():
    with pytest.raises(ValueError, match="no unit for metric 'params'"):
        axes.metric_kind("params")


def test_sizes_ticked_where_measured_powers_of_two_written_as_such():
    assert axes.size_ticks([256, 512, 1024, 2048]) == ([256.0, 512.0, 1024.0, 2048.0], ["256", "512", "1024", "2048"])
    ticks, labels = axes.size_ticks([2**k for k in range(8, 17)])
    assert ticks == [2.0**k for k in range(8, 17)] and labels[-1] == "2¹⁶" and labels[-3] == "2¹⁴"
    assert axes.size_ticks([1000, 3000, 10000, 30000])[1] == ["1000", "3000", "10k", "30k"]  # not powers of two: plain
    _, thinned = axes.size_ticks([2**k for k in range(4, 16)], max_labels=6)
    assert thinned[-1] == "2¹⁵" and sum(1 for t in thinned if t) <= 6 and "" in thinned  # labels never crowd


def test_value_ticks_are_a_short_1_2_5_ladder_never_every_digit():
    for lo, hi in ((-4.3, 0.2), (0.1, 0.9), (-1, 6), (2.01, 2.05)):
        ticks, _ = axes.value_ticks(lo, hi, max_ticks=7)
        assert 2 <= len(ticks) <= 7 or hi - lo < 0.1, (lo, hi, ticks)
        mantissas = {round(t / 10 ** math.floor(math.log10(t) + 1e-9), 6) for t in ticks}
        assert mantissas <= {1, 2, 3, 5} or hi - lo < 0.1, ticks  # no "5 6 7 8 9 1000 2"
    assert axes.tick_label(1e-5) == "10⁻⁵" and axes.tick_label(2e4) == "2×10⁴" and axes.tick_label(0.05) == "0.05"
    flat = axes.log_axis("decode state (KiB)", [64.0, 64.0])  # a constant series still gets two labelled ticks
    assert len(flat["tickvals"]) >= 2 and flat["range"][0] <= math.log10(64) <= flat["range"][1]


def test_every_metric_figure_has_units_and_measured_size_ticks(figures):
    assert {(m, fig.layout.meta["name"]) for m, _, fig in figures} >= {("forward", "forward-time"), ("decode", "decode-state"),
                                                                    ("train", "train-activations"), ("forward", "forward-peak-memory")}
    for _, _, fig in figures:
        assert fig.layout.xaxis.title.text == "sequence length (tokens)"
        assert list(fig.layout.xaxis.tickvals) == [float(n) for n in SIZES]
        assert re.search(r"\((ms|µs|s|ns|[kMGT]?FLOP|B|KiB|MiB|GiB|TiB)\)$", fig.layout.yaxis.title.text), fig.layout.yaxis.title.text
        for trace in fig.data:
            if trace.hovertemplate and "%{y" in trace.hovertemplate and "fitted" not in trace.hovertemplate:
                unit = fig.layout.yaxis.title.text.rsplit("(", 1)[1].rstrip(")")
                assert f" {unit}" in trace.hovertemplate  # hover reads in the axis unit too


def test_plotted_values_are_scaled_to_the_axis_unit(frame, figures):
    fig = next(f for _, _, f in figures if f.layout.meta["name"] == "forward-time")
    unit = fig.layout.yaxis.title.text.rsplit("(", 1)[1].rstrip(")")
    scale = dict(axes.TIME_UNITS)[unit]
    trace = next(t for t in fig.data if t.name == "softmax_attention")
    expected = frame[(frame["mechanism"] == "softmax_attention") & (frame["mode"] == "forward")]["time_s"] / scale
    assert np.allclose(trace.y, expected.to_numpy())


# --- series styles, spread, noise ---------------------------------------------------------------------


def test_series_styles_are_colour_blind_safe_and_distinct():
    names = [f"s{i}" for i in range(40)]
    styles = style.series_styles(names + ["s3"])  # repeated names keep their first style
    assert len(styles) == 40 and len({(s.color, s.symbol) for s in styles.values()}) == 40
    assert {s.color for s in styles.values()} <= set(style.OKABE_ITO)
    assert style.series_colors(["b", "a"]) == {"b": style.OKABE_ITO[0], "a": style.OKABE_ITO[1]}


def test_one_colour_per_series_in_every_figure_of_a_report(frame, figures):
    """The roofline lacks softmax_attention and the expert load has only moe_topk: each series still keeps the
    colour it has in the metric figures (numbering the series per figure would shift them)."""
    seen: dict[str, set[str]] = {}
    everything = [f for _, _, f in figures] + [*roofline_figures(frame), expert_load_figure(frame)]
    for fig in everything:
        for trace in fig.data:
            color = trace.marker.color if trace.marker is not None else None
            if trace.name and color and trace.showlegend is not False and trace.name.split(" (")[0] in style.report_styles(frame):
                seen.setdefault(trace.name.split(" (")[0], set()).add(color)
    assert set(seen) == {"softmax_attention", "linear_attention", "moe_topk"}
    assert all(len(colors) == 1 for colors in seen.values()), seen
    assert len({c for colors in seen.values() for c in colors}) == 3


def test_time_error_bars_span_the_measured_quartiles():
    rows = pd.DataFrame({"time_s": [2e-3, 1e-3, 1e-3, 5e-3], "time_iqr_s": [9.0, 4e-4, 3e-3, None],
                         "time_samples_s": [[1e-3, 2e-3, 3e-3, 4e-3, 2e-3], None, None, None]})
    bars = style.time_error_bars(rows, axes.Unit("ms", 1e-3))
    # samples: quartiles 2 and 3 ms around the 2 ms median (samples win over time_iqr_s); then ± half the IQR;
    # an IQR of 3 ms on a 1 ms median: down to half the median, up by the rest (never below zero); then none
    assert bars["array"][:3] == pytest.approx([1.0, 0.2, 2.5]) and bars["arrayminus"][:3] == pytest.approx([0.0, 0.2, 0.5])
    assert bars["array"][3] is None and bars["arrayminus"][3] is None
    per_block = rows.assign(time_samples_s=[[8 * s for s in rows["time_samples_s"][0]], None, None, None])
    assert style.time_error_bars(per_block, axes.Unit("ms", 1e-3))["array"][0] == pytest.approx(1.0)  # relative spread
    assert style.time_error_bars(rows.assign(time_iqr_s=None, time_samples_s=None), axes.Unit("ms", 1e-3)) is None


def test_noisy_points_are_ringed_and_only_those(frame, figures):
    fig = next(f for _, _, f in figures if f.layout.meta["name"] == "forward-time")
    rings = [t for t in fig.data if t.name == style.NOISY_NAME]
    assert len(rings) == 1 and list(rings[0].x) == [1024] and rings[0].marker.symbol == style.noisy_marker()["symbol"]
    measured = next(t for t in fig.data if t.name == "linear_attention")
    assert measured.error_y.array is not None  # and time carries its spread
    quiet = metric_figures(frame.assign(time_noisy=False, time_iqr_s=0.04 * frame["time_s"]), None)
    assert not any(t.name == style.NOISY_NAME for _, _, f in quiet for t in f.data)


def test_analytic_and_fitted_lines_differ_without_colour(figures):
    fig = next(f for _, _, f in figures if f.layout.meta["name"] == "forward-flops")
    dashes = {t.line.dash for t in fig.data if t.mode == "lines"}
    assert {style.ANALYTIC_DASH, style.FIT_DASH} <= dashes and style.ANALYTIC_DASH != style.FIT_DASH
    assert {t.name for t in fig.data if t.legendgroup == "key"} == {"analytic cost", "fitted slope"}
    symbols = {t.marker.symbol for t in fig.data if t.mode == "lines+markers"}
    assert len(symbols) == 3  # each series its own marker, for greyscale print


def test_titles_sit_left_and_below_the_toolbar(frame, figures):
    for fig in [f for _, _, f in figures] + [*roofline_figures(frame), expert_load_figure(frame)]:
        assert fig.layout.title.xanchor == "left" and fig.layout.title.x == 0
        assert fig.layout.margin.t >= 60  # the toolbar takes the top ~30 px at the right


def test_print_presets_size_fonts_and_drop_the_title(figures):
    fig = figures[0][2]
    single, double = style.print_layout(fig, "single"), style.print_layout(fig, "double")
    assert single.layout.width == 336 and double.layout.width == 672  # 3.5 in and 7 in at 96 px/in
    assert single.layout.font.size == pytest.approx(8 * 96 / 72) and double.layout.font.size == pytest.approx(9 * 96 / 72)
    assert not single.layout.title.text and fig.layout.title.text  # the caption is the paper's; the original keeps its title
    assert single.layout.legend.y > 1  # the legend sits above the plot, never over the data


def test_figure_names_read():
    assert axes.figure_name("forward", "time_s") == "forward-time"
    assert axes.figure_name("decode", "state_bytes") == "decode-state"
    assert axes.figure_name("pattern", "Sliding_Window [x]") == "pattern-sliding-window-x"


def test_export_refuses_bad_names_sizes_and_formats(tmp_path):
    fig = go.Figure(go.Scatter(x=[1, 2], y=[1, 2]))
    with pytest.raises(ValueError, match="letters, digits and '-'"):
        static.export_figures([("decode-decode_state___KV cache", fig)], tmp_path)
    with pytest.raises(ValueError, match="unique"):
        static.export_figures([("a", fig), ("a", fig)], tmp_path)
    with pytest.raises(ValueError, match="accepted: single, double"):
        static.export_figures([("a", fig)], tmp_path, size="poster")
    with pytest.raises(ValueError, match="accepted: svg, pdf, png"):
        static.export_figures([("a", fig)], tmp_path, formats=["eps"])


# --- the command line ---------------------------------------------------------------------------------


def _results(tmp_path: Path, frame: pd.DataFrame) -> Path:
    from effprof.store import records

    path = tmp_path / "r.jsonl"
    for record in frame.drop(columns=["time_samples_s"]).to_dict("records"):
        records.append(path, record)
    return path


def test_unknown_figure_size_is_one_line_exit_2(tmp_path, frame):
    result = CliRunner().invoke(app, ["report", str(_results(tmp_path, frame)), "-o", str(tmp_path / "r.html"),
                                      "--figures", str(tmp_path / "fig"), "--figure-size", "poster"])
    assert result.exit_code == 2 and "--figure-size 'poster'" in result.output and "single, double" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output and not (tmp_path / "r.html").exists()


def test_missing_browser_is_one_line_exit_2_before_any_work(tmp_path, frame, monkeypatch):
    monkeypatch.setattr(static, "browser_path", lambda: None)
    assert "Chromium" in static.missing_requirement()
    with pytest.raises(static.StaticExportError, match="Chrome or Chromium"):
        static.export_figures([("a", go.Figure())], tmp_path)
    result = CliRunner().invoke(app, ["report", str(_results(tmp_path, frame)), "-o", str(tmp_path / "r.html"), "--figures", str(tmp_path / "fig")])
    assert result.exit_code == 2 and "Chromium" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "r.html").exists() and not (tmp_path / "fig").exists()


# --- the exported files (kaleido and Chromium) ---------------------------------------------------------

EXPECTED = ["forward-time", "forward-flops", "forward-peak-memory", "forward-state", "train-time", "train-activations",
            "decode-time", "decode-state", "roofline-forward", "roofline-train", "roofline-decode", "expert-load", "pattern-sliding-window"]


@pytest.fixture(scope="module")
def exported(frame, fits, tmp_path_factory) -> Path:
    """Every figure kind exported once, at the single-column preset (one browser session for all files)."""
    reason = static.missing_requirement()
    if reason:
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("figures")
    lean = frame.copy()  # every kind once: the metric figures of each mode, but not every metric of every mode
    lean.loc[lean["mode"] != "forward", ["flops_counted", "flops_analytic", "peak_bytes"]] = float("nan")
    lean.loc[lean["mode"] == "train", "state_bytes"] = float("nan")
    from effprof.analyse.session import analyse

    session = analyse(lean, fits=fits, patterns=[_pattern()])  # the full frame's fits: lines where rows remain
    written = write_figures(session, folder, "single")
    assert sorted(written) == sorted(str(folder / f"{name}.{kind}") for name in EXPECTED for kind in static.FORMATS)
    return folder


@pytest.mark.parametrize("name", EXPECTED)
def test_every_figure_kind_exports_files_that_parse(exported, name):
    svg, pdf, png = (exported / f"{name}.{kind}" for kind in static.FORMATS)
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg") and len(list(root.iter())) > 20
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-") and b"%%EOF" in data[-64:]
    head = png.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    width, _height = struct.unpack(">II", head[16:24])
    assert width == round(3.5 * style.PNG_DPI)  # single column at 300 dpi
    assert _png_dpi(png.read_bytes()) == pytest.approx(style.PNG_DPI, abs=0.01)  # and says so, for LaTeX's includegraphics


def _png_dpi(data: bytes) -> float | None:
    """The resolution a PNG records (its pHYs chunk, in pixels per metre), in dots per inch."""
    at = data.find(b"pHYs")
    if at < 0:
        return None
    x, _y, unit = struct.unpack(">IIB", data[at + 4:at + 13])
    return x * 0.0254 if unit == 1 else None


def test_png_resolution_is_recorded_once_and_non_png_refused(tmp_path):
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
           + chunk(b"pHYs", struct.pack(">IIB", 2835, 2835, 1)) + chunk(b"IDAT", zlib.compress(b"\x00\x00")) + chunk(b"IEND", b""))
    path = tmp_path / "a.png"
    path.write_bytes(png)
    assert _png_dpi(png) == pytest.approx(72, abs=0.1)
    static.set_png_dpi(path, 300)
    static.set_png_dpi(path, 300)
    data = path.read_bytes()
    assert data.count(b"pHYs") == 1 and _png_dpi(data) == pytest.approx(300, abs=0.01) and data.endswith(chunk(b"IEND", b""))
    (tmp_path / "b.png").write_bytes(b"GIF89a")
    with pytest.raises(static.StaticExportError, match="not a PNG"):
        static.set_png_dpi(tmp_path / "b.png", 300)


def test_exported_pdf_is_a_column_wide_and_keeps_its_units(exported):
    box = re.search(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)", (exported / "forward-time.pdf").read_bytes())
    assert box and float(box.group(1)) == pytest.approx(3.5 * 72, abs=1)
    assert b"/FontFile" in (exported / "forward-time.pdf").read_bytes()  # fonts embedded, as journals require
    text = (exported / "forward-time.svg").read_text(encoding="utf-8")
    assert "sequence length (tokens)" in text and re.search(r"time per forward pass \((ms|µs|s)\)", text)


def test_pattern_heatmap_axes_name_their_unit():
    fig = pattern_figure(_pattern())
    assert fig.layout.xaxis.title.text == "key position (token index)" and fig.layout.title.xanchor == "left"


def test_browser_search_falls_back_to_the_path(monkeypatch):
    """Without choreographer's search (not installed, or another API), the usual browser names on the PATH."""
    import sys

    monkeypatch.setitem(sys.modules, "choreographer.browsers.chromium", None)  # importing it now raises ImportError
    monkeypatch.setattr(static.shutil, "which", lambda name: f"/opt/bin/{name}" if name == "google-chrome" else None)
    assert static.browser_path() == "/opt/bin/google-chrome"
    monkeypatch.setattr(static.shutil, "which", lambda name: None)
    assert static.browser_path() is None and "Chrome or Chromium" in static.missing_requirement()
