"""One metrics table and one unit ladder (issue 22): every renderer names a metric as effprof.store.metrics.METRICS does,
and writes a value on the steps of effprof.store.metrics.LADDERS — the console (metrics.human), the axes of figures
(render.axes) and the report page's script (which reads the ladder as JSON data)."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console

from effprof.analyse.points import aggregate
from effprof.analyse.session import analyse
from effprof.render import axes, breakdown, console, export, figures, html
from effprof.store import metrics
from effprof.store.metrics import LADDERS, METRICS, human, ladder_data, unit_of
from tests.test_report import _breakdown_frame

RENDER = Path(metrics.__file__).parents[1] / "render"
TEMPLATE = RENDER / "templates" / "report.html.j2"


# ---- the ladder ---------------------------------------------------------------------------------------------------


def test_the_ladder_tops_out_at_tib_and_pflop_and_writes_fractions_and_small_bytes():
    assert human(3 * 2**40, "bytes") == "3 TiB"  # was "3.07e+03 GiB" in the tables while the axes said TiB
    assert human(2.5e15, "flops") == "2.5P" and human(4.19e8, "flops_counted") == "419M" and human(512, "flops") == "512"
    assert human(1000, "bytes") == "1000 B" and human(20 * 2**10, "state_bytes") == "20 KiB"  # never "1e+03 B"
    assert human(2.5, "bytes") == "3 B" and human(3.5, "bytes") == "4 B"  # halves up, as the page's Math.round (the median of 2 and 3 B)
    assert human(1.5e-3, "time") == "1.5 ms" and human(5e-10, "time_s") == "0.5 ns"
    assert human(0.315, "roofline_fraction") == "31.5%" and human(62.5, "intensity") == "62.5" and human(3.2e9, "params") == "3.2G"
    assert human(None, "time") == "–" and human(float("nan"), "bytes") == "–"
    assert axes.unit_for("bytes", [2**41, 3 * 2**41]).symbol == "TiB" and axes.unit_for("flops", [1e15, 5e15]).symbol == "PFLOP"


def test_console_axes_and_page_data_use_the_same_steps():
    """Each step of each axis kind: the console writes 2 of it with its suffix, an axis over that value is drawn in it
    (the suffix plus the kind's axis unit: G -> GFLOP), and the page's data carries the same steps."""
    page = html.records_data(aggregate(_breakdown_frame()), "seq_len")["units"]
    assert page == ladder_data() and set(page) == set(LADDERS)
    for kind in axes.AXIS_KINDS:
        ladder = LADDERS[kind]
        assert page[kind]["steps"] == [list(step) for step in ladder.steps] and page[kind]["sep"] == ladder.sep
        assert [scale for _, scale in axes.axis_units(kind)] == [scale for _, scale in ladder.steps]
        for suffix, scale in ladder.steps:
            assert human(2 * scale, kind) == "2" + (ladder.sep + suffix if suffix else "")
            unit = axes.unit_for(kind, [2 * scale])
            assert (unit.symbol, unit.scale) == (suffix + ladder.axis, scale), (kind, suffix)
    assert axes.TIME_UNITS == axes.axis_units("time")


def _page_human():
    """The page's own human() and g3() from the template, as JavaScript source."""
    text = TEMPLATE.read_text(encoding="utf-8")
    return [re.search(rf"\n    function {name}\(.*?\n    \}}\n", text, re.DOTALL).group(0) for name in ("g3", "human")]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_page_script_writes_every_unit_as_python_does():
    values = [0.0, 1.0, 7.0, 999.0, 1000.0, 1023.0, 1024.0, 1536.0, 3.3 * 2**20, 5.1e11, 1.23e12, 1.234e15, 7e17, 3.1e-10, 4.2e-7,
              0.0123, 0.5, 2.5, 12.5, 2.2e-4, -3.1e6, 2**40, 5 * 2**40]
    cases = [[v, kind] for kind in LADDERS for v in values]
    script = "\n".join(["var data = {units: " + json.dumps(ladder_data()) + "};", *_page_human(), "var cases = " + json.dumps(cases) + ";",
                        "console.log(JSON.stringify(cases.map(function (c) { return human(c[0], c[1]); })));"])
    shown = json.loads(subprocess.run(["node", "-e", script], capture_output=True, text=True, check=True, timeout=60).stdout)
    assert shown == [human(v, kind) for v, kind in cases]


def test_the_page_keeps_no_copy_of_the_steps():
    script = TEMPLATE.read_text(encoding="utf-8").split("<script>", 1)[1]
    suffixes = {suffix + (ladder.axis or "") for ladder in LADDERS.values() for suffix, _ in ladder.steps} | {
        suffix for ladder in LADDERS.values() for suffix, _ in ladder.steps}
    for suffix in sorted(s for s in suffixes if len(s) > 1):
        assert not re.search(rf"[\"']{re.escape(suffix)}[\"']", script), suffix
    assert not re.search(r"toFixed\(1\) \+ \"%\"", script)  # fractions too: the ladder's %, not a second rule


# ---- one unit-kind classifier ------------------------------------------------------------------------------------


def test_one_classifier_knows_the_table_and_the_column_patterns():
    assert [unit_of(n) for n in ("time", "time_iqr_s", "projected_time_s", "peak_flops_per_s", "bandwidth_in_cache_bytes_per_s",
                                 "state_bytes", "params", "roofline_fraction", "arithmetic_intensity", "fraction")] == [
        "time", "time", "time", "flops", "bytes", "bytes", "count", "fraction", "intensity", "fraction"]
    assert axes.metric_kind("projected_time_s") == "time" and axes.metric_kind("flops_analytic") == "flops"


@pytest.mark.parametrize("name", ["load_avg_1m", "seq_len", "dropped_fraction", "nonsense"])
def test_an_unknown_name_has_no_unit_never_flops(name):
    """A column that is neither a metric nor a known pattern raised nowhere before: metrics.unit_of called it FLOPs."""
    with pytest.raises(ValueError, match=f"no unit for '{name}'.*time\\*, \\*bytes"):
        unit_of(name)
    with pytest.raises(ValueError, match=f"no unit for '{name}'"):
        human(1.0, name)
    with pytest.raises(ValueError, match=f"no unit for '{name}'"):
        human(None, name)  # the name is checked before the value: a wrong unit never hides behind a missing value
    with pytest.raises(ValueError, match=f"no unit for '{name}'"):
        axes.metric_kind(name)


def test_a_unit_that_is_not_a_name_is_refused():
    for unit in (None, 3, ["time"]):
        with pytest.raises(ValueError, match="no unit for .*give a unit kind"):
            human(1.0, unit)


def test_a_kind_with_no_axis_unit_is_refused_on_an_axis():
    with pytest.raises(ValueError, match="no unit for metric 'params'.*count"):
        axes.metric_kind("params")
    with pytest.raises(ValueError, match="no axis unit for 'fraction'"):
        axes.unit_for("fraction", [0.5])


# ---- one metrics table -------------------------------------------------------------------------------------------


@pytest.fixture
def relabelled():
    """Every metric of the table with a label, short label and file word that no renderer could hold a copy of,
    swapped into every container of effprof.metrics in place (renderers imported them by name), then put back."""
    old = dict(METRICS)
    new = {name: replace(m, label=f"Label-of-{name}", short=f"short-of-{name}", file=f"fileof{name.replace('_', '')}") for name, m in old.items()}

    def swap(table):
        for name, m in table.items():
            metrics.METRICS[name] = m
            metrics.BY_COLUMN[m.column] = m
        for rows in (metrics.COMPARED, metrics.CROSSED, metrics.ROOFLINE):
            rows[:] = [table[m.name] for m in rows]

    swap(new)
    try:
        yield new
    finally:
        swap(old)
    assert metrics.METRICS["time"].label == "time (median)"


def _text(renderable) -> str:
    out = Console(width=400, record=True)
    out.print(renderable)
    return out.export_text()


def test_every_renderer_names_a_metric_from_the_table(relabelled):
    frame = _breakdown_frame()
    session = analyse(frame)
    titles = [str(t.title) for t in console.comparison_tables(session)]
    assert "Label-of-time — forward" in titles and "Label-of-state_bytes — forward" in titles
    summary = _text(console.summary_table(session))
    assert "short-of-time" in summary and "short-of-peak_bytes" in summary and "short-of-state_bytes" in summary
    tree = _text(breakdown.breakdown_tree(frame.iloc[0].to_dict()))
    assert "short-of-flops" in tree and "short-of-time" in tree and "short-of-peak_bytes" in tree

    drawn = {fig.layout.meta["name"]: (title, fig.layout.yaxis.title.text) for _, title, fig in figures.metric_figures(frame, session.fits_frame)}
    assert drawn["forward-fileoftime"][0] == "Label-of-time — forward"
    assert drawn["forward-fileoftime"][1].startswith("short-of-time per forward pass (")  # per call: short label + per what
    assert drawn["forward-fileofstatebytes"][1].startswith("Label-of-state_bytes (")  # a point's memory: its label
    shares = {fig.layout.meta["name"]: fig.layout.title.text for _, fig in breakdown.share_figures(frame, "time_s")}
    assert any("short-of-time by submodule" in t for t in shares.values()) and all("fileoftime" in n for n in shares)

    tex = export.latex(session)
    assert "short-of-time per forward pass" in tex and "tab:effprof-values-forward-fileoftime" in tex
    page = html.render(session, plotlyjs="directory")
    # a figure's title sits in plotly's JSON, which escapes "—" as \u2014 where orjson is not installed (a fresh venv)
    assert any(form in page for form in ("Label-of-time — forward", json.dumps("Label-of-time — forward")[1:-1]))
    assert "short-of-time per forward pass" in page and "short-of-flops by submodule" in page
    assert "FLOPs (counted)" not in page and "peak memory" not in page  # the table's own labels are gone with it


def test_the_roofline_tables_name_their_columns_from_the_table(relabelled):
    from tests.test_roofline import _records

    session = analyse(_records())
    record = next(r for r in session.records if r.get("roofline_bound_s") is not None)
    shown = _text(console.record_table(record))
    assert "Label-of-roofline_bound" in shown and "Label-of-roofline_fraction" in shown and "Label-of-intensity" in shown
    page = html.render(session, plotlyjs="directory")
    assert all(f"<th>short-of-{name}</th>" in page for name in ("roofline_bound", "roofline_fraction", "intensity"))
    assert "Label-of-intensity" in page  # the roofline figure's axis
    tex = export.latex(session)
    assert "Short-of-roofline\\_bound" in tex and "Short-of-intensity" in tex


def _render_literals(path: Path) -> list[tuple[int, str]]:
    return [(node.lineno, node.value) for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def test_no_renderer_keeps_its_own_copy_of_a_label_a_file_word_or_a_unit():
    """A string in a render module equal to a metric's label, short label or file word, or to a step of the ladder,
    is a second home for it. Words that are also a metric's name or column or a unit kind ("time") are how code
    asks the table, and the complexity table's "state" column is the theory's decode state, not the metric."""
    asked = set(METRICS) | {m.column for m in METRICS.values()} | set(LADDERS) | {"state"}
    words = {w for m in METRICS.values() for w in (m.label, m.short, m.file)} - asked
    steps = {s for ladder in LADDERS.values() for suffix, _ in ladder.steps for s in (suffix, suffix + (ladder.axis or ""))}
    steps = {s for s in steps if len(s) > 1}  # single letters (k, M, %) are ordinary text
    copies = [(path.name, line, value) for path in sorted(RENDER.glob("*.py")) for line, value in _render_literals(path)
              if value.strip() in words | steps]
    assert not copies, copies
    template = re.sub(r"<script>.*?</script>", "", TEMPLATE.read_text(encoding="utf-8"), flags=re.DOTALL)
    headers = {h.strip() for h in re.findall(r"<th[^>]*>([^<{]+)</th>", template)}
    assert not headers & (words | steps), headers & (words | steps)
