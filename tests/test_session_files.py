"""Session files and side files (issue 21): a crafted session cannot put markup in a report, draws nothing of
another run, and gives no traceback; every file effprof writes beside its outputs is checked before measuring,
never written through a symbolic link and never waited on as a FIFO; two compares of one -o cannot both win."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from effprof.analyse.session import SESSION_VERSION, Session, SessionError, analyse, saved_session, session_path
from effprof.cli import app
from effprof.store.records import file_digest, read
from effprof.store.synthetic import write as write_synthetic

runner = CliRunner()
SCRIPT = "<script>effprofpwn()</script>"
PATTERN = {"name": "sparse_x", "n": 4, "rows": [0, 1, 1, 2, 3], "cols": [0, 0, 1, 2, 3], "pairs": 5, "density": 0.5,
           "causal": True, "config": {"seq_len": 4, "block": 2}}


def _results(tmp_path: Path, name: str = "r", series: int = 2) -> Path:
    """Synthetic records of the sparse family (the report draws attention patterns in that family's section)."""
    path = tmp_path / f"{name}.jsonl"
    write_synthetic(path, series=series, sizes=3)
    path.write_text(path.read_text().replace('"family": "synthetic"', '"family": "sparse"'))
    return path


def _session_for(results: Path, patterns=None, **changes) -> dict:
    """The JSON of a session made from `results` (its hash included), with `changes` applied to the JSON."""
    session = analyse(read(results), patterns=patterns)
    session.source_sha256 = file_digest(results)
    session.save(session_path(results))
    data = json.loads(session_path(results).read_text())
    data.update(changes)
    return data


def _report(tmp_path: Path, results: Path, *extra: str):
    return runner.invoke(app, ["report", str(results), "-o", str(tmp_path / "r.html"), *extra])


def _in_thread(call, seconds: float = 20.0):
    """Run `call` in a thread: a FIFO opened for reading or writing would block it forever."""
    box: dict = {}
    thread = threading.Thread(target=lambda: box.setdefault("value", call()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "blocked (on a FIFO?)"
    return box.get("value")


# ---- markup from a session file --------------------------------------------------------------------------


def test_a_stored_div_never_reaches_the_page(tmp_path):
    """The crafted session of the issue: its pattern carries a `div` of script, and report printed it with |safe."""
    results = _results(tmp_path)
    data = _session_for(results, patterns=[PATTERN])
    data["patterns"][0]["div"] = SCRIPT
    session_path(results).write_text(json.dumps(data))
    result = _report(tmp_path, results)
    assert result.exit_code == 0, result.output
    page = (tmp_path / "r.html").read_text()
    assert "effprofpwn" not in page
    assert "warning:" in result.stderr and "'div' is not pattern data" in result.stderr and "rebuilt" in result.stderr
    rebuilt = Session.load(session_path(results))  # the file beside the results is a clean session of them now
    assert rebuilt.source_sha256 == file_digest(results) and rebuilt.patterns is None


def test_pattern_panels_are_drawn_from_data_with_names_escaped(tmp_path):
    from tests.test_export import _Tags

    results = _results(tmp_path)
    hostile = {**PATTERN, "name": '<img src=x onerror=effprofpwn()><a href="https://example.com">x</a>'}
    session_path(results).write_text(json.dumps(_session_for(results, patterns=[hostile])))
    result = _report(tmp_path, results)
    assert result.exit_code == 0 and "warning" not in result.stderr, result.output
    page = (tmp_path / "r.html").read_text()
    assert "Attention patterns" in page and "sparse_x" not in page
    parser = _Tags()
    parser.feed(page)
    assert parser.injected == []
    # plotly.js reads tags in titles and trace names: in the figure's JSON (where plotly writes < as \u003c and / as
    # \u002f) the name is entities, never a tag plotly.js would build
    assert "\\u003ca href" not in page and '&lt;a href=\\"https:\\u002f\\u002fexample.com' in page


def test_a_session_of_other_records_is_not_drawn(tmp_path):
    """Today another run's attention pattern is drawn silently: R.session.json copied beside other results."""
    first, second = _results(tmp_path, "first"), _results(tmp_path, "second", series=3)
    data = _session_for(first, patterns=[PATTERN])
    session_path(second).write_text(json.dumps(data))
    result = _report(tmp_path, second)
    assert result.exit_code == 0, result.output
    assert "made from other records" in result.stderr and "content hash" in result.stderr
    assert "sparse_x" not in (tmp_path / "r.html").read_text()
    assert Session.load(session_path(second)).source_sha256 == file_digest(second)
    # the same results with a record appended since the session was made: also not theirs any more
    session_path(first).write_text(json.dumps(data))
    assert saved_session(first)[0] is not None
    with first.open("a") as f:
        f.write(first.read_text().splitlines()[0] + "\n")
    session, why = saved_session(first)
    assert session is None and "made from other records" in why


def test_a_matching_session_is_drawn_quietly(tmp_path):
    results = _results(tmp_path)
    session_path(results).write_text(json.dumps(_session_for(results, patterns=[PATTERN])))
    before = session_path(results).read_bytes()
    result = _report(tmp_path, results)
    assert result.exit_code == 0 and "warning" not in result.stderr, result.output
    assert "sparse_x: density" in (tmp_path / "r.html").read_text()
    assert session_path(results).read_bytes() == before  # a session that belongs is not rewritten


# ---- crafted session files: one warning, never a traceback ---------------------------------------------

def _crafted(valid: dict) -> dict[str, str]:
    def with_(**changes):
        return json.dumps({**valid, **changes})

    def nested(depth):
        return "[" * depth + "]" * depth

    missing = {k: v for k, v in valid.items() if k != "fits"}
    return {
        "not json": "{not json",
        "not an object": "[1, 2]",
        "no version": json.dumps({k: v for k, v in valid.items() if k != "session"}),
        "missing key": json.dumps(missing),
        "deep nesting": '{"session": 2, "records": ' + nested(100_000) + "}",
        "5000-digit integer": with_(records=[]).replace('"records": []', '"records": [' + "9" * 5000 + "]"),
        "400-digit integer in a pattern": with_(patterns=[{**PATTERN, "n": 10**400}]),
        "patterns: [{}]": with_(patterns=[{}]),
        "n: 0": with_(patterns=[{**PATTERN, "n": 0}]),
        "position out of range": with_(patterns=[{**PATTERN, "rows": [0, 1, 1, 2, 99]}]),
        "rows and cols of two lengths": with_(patterns=[{**PATTERN, "cols": [0]}]),
        "records: 5": with_(records=5),
        "a record that is no record": with_(records=[{"mechanism": 5, "mode": "forward"}]),
        "fits: [{}]": with_(fits=[{}]),
        "a fit's mechanism a list": with_(fits=[{**valid["fits"][0], "mechanism": ["a"]}]),
        "a fit's config nested": with_(fits=[{**valid["fits"][0], "config": {"impl": {"div": "<script>"}}}]),
        "a fit's config a list": with_(fits=[{**valid["fits"][0], "config": ["impl=x"]}]),
        "module_fits: [{}]": with_(module_fits=[{}]),
        "a crossover's at text": with_(crossovers=[{**valid["crossovers"][0], "at": "far"}]) if valid["crossovers"] else with_(crossovers=[{}]),
        "noise a list": with_(noise=[1]),
        "title a number": with_(title=5),
        "hash not hex": with_(source_sha256="<script>"),
        "binary": "\udcff".encode("utf-8", "surrogateescape").decode("latin-1"),
        "empty": "",
    }


def test_crafted_session_files_are_refused_in_one_line(tmp_path):
    results = _results(tmp_path)
    valid = _session_for(results, patterns=[PATTERN])
    assert valid["session"] == SESSION_VERSION
    for case, text in _crafted(valid).items():
        path = session_path(results)
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
        with pytest.raises(SessionError, match="r.session.json") as refused:
            Session.load(path)
        assert "\n" not in str(refused.value) and len(str(refused.value)) < 300, case


@pytest.mark.parametrize("case", ["deep nesting", "5000-digit integer", "patterns: [{}]"])  # every case: the slow test below
def test_report_skips_a_crafted_session_with_a_warning_and_rebuilds_it(tmp_path, case):
    results = _results(tmp_path)
    text = _crafted(_session_for(results, patterns=[PATTERN]))[case]
    session_path(results).write_text(text, encoding="utf-8", errors="surrogateescape")
    _report_rebuilds(tmp_path, results, case)


@pytest.mark.slow
def test_report_rebuilds_every_crafted_session(tmp_path):
    results = _results(tmp_path)
    for case, text in _crafted(_session_for(results, patterns=[PATTERN])).items():
        session_path(results).write_text(text, encoding="utf-8", errors="surrogateescape")
        _report_rebuilds(tmp_path, results, case)


def _report_rebuilds(tmp_path: Path, results: Path, case: str) -> None:
    result = _report(tmp_path, results)
    assert result.exit_code == 0, (case, result.output)
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "session file" in warnings[0] and "rebuilt" in warnings[0], (case, result.stderr)
    assert Session.load(session_path(results)).source_sha256 == file_digest(results), case  # rebuilt from the records


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_session_files_load_or_are_refused(tmp_path, data):
    """Any JSON value put anywhere in a valid session: Session.load returns a session or raises SessionError, nothing else."""
    base = _fuzz_base(tmp_path)
    node = base
    while isinstance(node, (dict, list)) and node and data.draw(st.booleans()):
        key = data.draw(st.sampled_from(sorted(node) if isinstance(node, dict) else range(len(node))))
        if not isinstance(node[key], (dict, list)) or not node[key]:
            break
        node = node[key]
    if isinstance(node, dict):
        node[data.draw(st.sampled_from([*sorted(node), "div", "extra"]))] = data.draw(JSON)
    elif isinstance(node, list) and node:
        node[data.draw(st.integers(0, len(node) - 1))] = data.draw(JSON)
    path = tmp_path / "fuzz.session.json"
    path.write_text(json.dumps(base))
    try:
        Session.load(path)
    except SessionError:
        pass


_FUZZ: dict = {}


def _fuzz_base(tmp_path: Path) -> dict:
    if "data" not in _FUZZ:
        results = _results(tmp_path, "fuzzbase")
        _FUZZ["data"] = _session_for(results, patterns=[PATTERN])
    return json.loads(json.dumps(_FUZZ["data"]))


def test_pattern_limit_is_the_patterns_own():
    from effprof.analyse.session_schema import MAX_PATTERN_N
    from effprof.mechanisms.sparse.pattern import MAX_SEQ_LEN

    assert MAX_PATTERN_N == MAX_SEQ_LEN


# ---- side files ------------------------------------------------------------------------------------------


def test_a_planted_corrupt_symlink_is_not_written_through(tmp_path):
    """A sweep's cut last line goes to r.jsonl.corrupt: a symlink there (a stand-in for a dotfile) is not followed."""
    import warnings

    from effprof.store.records import append

    results = tmp_path / "r.jsonl"
    results.write_text('{"mechanism": "m", "mode": "forward", "seq')  # cut mid-write
    target = tmp_path / "dotfile"
    target.write_text("mine\n")
    (tmp_path / "r.jsonl.corrupt").symlink_to(target)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        append(results, {"mechanism": "m", "mode": "forward", "status": "ok"})
    assert target.read_text() == "mine\n"
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("r.jsonl.corrupt.")]
    assert len(aside) == 1 and aside[0].read_text().startswith('{"mechanism": "m", "mode": "forward", "seq')
    assert any("not a regular file" in str(w.message) for w in caught)
    assert json.loads(results.read_text()) == {"mechanism": "m", "mode": "forward", "status": "ok"}


def test_a_fifo_at_the_corrupt_file_never_hangs_the_append(tmp_path):
    import warnings

    from effprof.store.records import append

    results = tmp_path / "r.jsonl"
    results.write_text('{"cut')
    os.mkfifo(tmp_path / "r.jsonl.corrupt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _in_thread(lambda: append(results, {"mechanism": "m", "mode": "forward"}))
    assert results.read_text().count("\n") == 1 and any(p.name.startswith("r.jsonl.corrupt.") for p in tmp_path.iterdir())


@pytest.mark.parametrize("kind", ["fifo", "symlink", "directory"])
def test_sweep_refuses_a_bad_side_file_before_measuring(tmp_path, kind):
    side = tmp_path / "r.jsonl.corrupt"
    {"fifo": lambda: os.mkfifo(side), "symlink": lambda: side.symlink_to(tmp_path / "elsewhere"), "directory": side.mkdir}[kind]()
    result = runner.invoke(app, ["sweep", "softmax_attention", "--vary", "seq_len=16", "-o", str(tmp_path / "r.jsonl")])
    assert result.exit_code == 2, result.output
    assert "r.jsonl.corrupt" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r.jsonl").exists()  # nothing measured


def test_sweep_refuses_a_symlink_as_its_results_file(tmp_path):
    target = tmp_path / "elsewhere.jsonl"
    target.write_text("")
    (tmp_path / "r.jsonl").symlink_to(target)
    result = runner.invoke(app, ["sweep", "softmax_attention", "--vary", "seq_len=16", "-o", str(tmp_path / "r.jsonl")])
    assert result.exit_code == 2 and "symbolic link" in result.stderr, result.output
    assert target.read_text() == ""


@pytest.mark.parametrize("side", ["out_fits.csv", "out_crossovers.csv"])
def test_report_refuses_a_fifo_at_a_csv_side_file(tmp_path, side):
    results = _results(tmp_path)
    os.mkfifo(tmp_path / side)
    result = _in_thread(lambda: _report(tmp_path, results, "--csv", str(tmp_path / "out.csv")))
    assert result.exit_code == 2 and side in result.stderr and "FIFO" in result.stderr, result.output
    assert not (tmp_path / "r.html").exists()


def test_export_side_files_replace_a_symlink_never_write_through_it(tmp_path):
    results = _results(tmp_path)
    targets = {name: tmp_path / f"target-{name}" for name in ("out_fits.csv", "out_crossovers.csv", "out.csv", "t.tex")}
    for name, target in targets.items():
        target.write_text("mine\n")
        (tmp_path / name).symlink_to(target)
    result = _report(tmp_path, results, "--csv", str(tmp_path / "out.csv"), "--latex", str(tmp_path / "t.tex"))
    assert result.exit_code == 0, result.output
    for name, target in targets.items():
        assert target.read_text() == "mine\n", name
        assert not (tmp_path / name).is_symlink() and (tmp_path / name).stat().st_size > 0, name


def test_a_fifo_at_the_session_file_never_hangs_report(tmp_path):
    results = _results(tmp_path)
    os.mkfifo(session_path(results))
    result = _in_thread(lambda: _report(tmp_path, results))
    assert result.exit_code == 0, result.output
    assert "not a regular file" in result.stderr and "left as it is" in result.stderr
    assert session_path(results).is_fifo()


def test_compare_refuses_a_bad_session_side_file_before_measuring(tmp_path):
    os.mkfifo(tmp_path / "c.session.json")
    result = runner.invoke(app, ["compare", "softmax_attention", "--vary", "seq_len=16,32,64", "-o", str(tmp_path / "c.html")])
    assert result.exit_code == 2 and "c.session.json" in result.stderr, result.output
    assert not (tmp_path / "c.jsonl").exists()


def test_patterns_output_is_checked_and_never_written_through(tmp_path):
    os.mkfifo(tmp_path / "p.html")
    result = _in_thread(lambda: runner.invoke(app, ["patterns", "sliding_window", "-o", str(tmp_path / "p.html")]))
    assert result.exit_code == 2 and "FIFO" in result.stderr, result.output
    target = tmp_path / "target"
    target.write_text("mine\n")
    (tmp_path / "q.html").symlink_to(target)
    result = runner.invoke(app, ["patterns", "sliding_window", "--seq-len", "32", "-o", str(tmp_path / "q.html")])
    assert result.exit_code == 0, result.output
    assert target.read_text() == "mine\n" and not (tmp_path / "q.html").is_symlink()


def test_the_plotly_bundle_beside_a_report_is_checked(tmp_path):
    results = _results(tmp_path)
    os.mkfifo(tmp_path / "plotly.min.js")
    result = _in_thread(lambda: _report(tmp_path, results, "--plotlyjs", "directory"))
    assert result.exit_code == 2 and "plotly.min.js" in result.stderr, result.output


# ---- two compares of one -o --------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_compares_of_one_output_cannot_both_win(tmp_path, monkeypatch):
    """The race: both passed the check before measuring (no results yet); the other run finishes first. This one is
    refused at the moment of writing, the other's records stay, and this run's records are kept in its partial file."""
    import effprof.cli.measure as measure

    other = '{"mechanism": "other run", "mode": "forward"}\n'
    real = measure.measure_with_progress

    def measure_while_another_run_finishes(points, options, output, executor=None, resume_hint=""):
        records = real(points, options, output, executor, resume_hint)
        (tmp_path / "c.jsonl").write_text(other)  # the concurrent compare renames its results into place now
        return records

    monkeypatch.setattr(measure, "measure_with_progress", measure_while_another_run_finishes)
    result = runner.invoke(app, ["compare", "softmax_attention", "--vary", "seq_len=16,32,64", "--mode", "forward", "--max-time",
                                 "0.01", "--no-breakdown", "-o", str(tmp_path / "c.html")])
    assert result.exit_code == 2, result.output
    last = result.stderr.strip().splitlines()[-1]  # after the progress bar: one line
    assert last.startswith("error: ") and "written by another run" in last
    assert (tmp_path / "c.jsonl").read_text() == other
    partial = [p for p in tmp_path.iterdir() if p.name.endswith(".partial.jsonl")]
    assert len(partial) == 1 and len(read(partial[0])) == 3
    assert not (tmp_path / "c.html").exists()


def test_two_processes_claiming_one_results_name(tmp_path):
    """The claim itself, raced by real processes: exactly one of many wins, every loser is refused."""
    import subprocess
    import sys

    code = ("import sys, pathlib\nfrom effprof.cli.measure import _move_into_place\nfrom effprof.cli import BadInput\n"
            "p = pathlib.Path(sys.argv[1]); p.write_text(sys.argv[2] + '\\n')\n"
            "try:\n    _move_into_place(p, pathlib.Path(sys.argv[3]), False, pathlib.Path('x.html'))\n"
            "except BadInput:\n    sys.exit(2)\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / f"p{i}"), f"run {i}", str(tmp_path / "c.jsonl")], env=env)
             for i in range(4)]
    codes = [p.wait(timeout=120) for p in procs]
    assert sorted(codes) == [0, 2, 2, 2]
    winner = codes.index(0)
    assert (tmp_path / "c.jsonl").read_text() == f"run {winner}\n"


# ---- large files: records read as columns ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["compare.jsonl", "sparse.jsonl", "ssm.jsonl"])
def test_records_read_as_columns_are_the_frame_of_the_records(name):
    import pandas as pd

    from effprof.store.records import read_frame, to_frame

    path = Path(__file__).parents[1] / "reports" / name
    pd.testing.assert_frame_equal(read_frame(path), to_frame(read(path)))


def test_reading_as_columns_skips_what_reading_as_dicts_skips(tmp_path):
    import warnings

    import pandas as pd

    from effprof.store.records import read_frame, to_frame

    path = _results(tmp_path)
    lines = path.read_text().splitlines()
    bad = ['{"mechanism": "m", "mode": "forward", "seq_len": -1}', "{cut", "[" * 5000 + "]" * 5000,
           '{"mechanism": "m", "mode": "forward", "seq_len": ' + "9" * 400 + "}", '{"mechanism": "m", "mode": "forward", "extra": null}']
    path.write_text("\n".join([lines[0], *bad, *lines[1:]]) + "\n")
    with warnings.catch_warnings(record=True) as as_dicts:
        warnings.simplefilter("always")
        expected = to_frame(read(path))
    with warnings.catch_warnings(record=True) as as_columns:
        warnings.simplefilter("always")
        frame = read_frame(path)
    pd.testing.assert_frame_equal(frame, expected)
    assert [str(w.message) for w in as_columns] == [str(w.message) for w in as_dicts] and len(as_dicts) == 4
    assert frame["extra"].isna().all() and frame["claims"].iloc[0] is frame["claims"].iloc[2]  # one claims list per mechanism


def test_a_session_analysed_from_columns_keeps_its_records(tmp_path):
    from effprof.analyse.session import FrameRecords
    from effprof.store.records import read_frame

    path = _results(tmp_path)
    session = analyse(read_frame(path))
    assert isinstance(session.records, FrameRecords) and len(session.records) == 6
    dicts = analyse(read(path))
    assert session.fits == dicts.fits and session.crossovers == dicts.crossovers
    assert list(session.records) == dicts.records and session.records[-1] == dicts.records[-1]
    session.save(tmp_path / "s.session.json")
    assert Session.load(tmp_path / "s.session.json").records == dicts.records


def test_figures_are_renamed_into_place_never_written_through_a_symlink(tmp_path, monkeypatch):
    """kaleido (Chrome) writes into a staging folder of effprof's own; each file is renamed over whatever is at its
    name. Chrome is not needed: the writer is replaced by one that writes the files kaleido would."""
    import plotly.graph_objects as go

    from effprof.render import static

    def fake_export(named, folder, size, formats):
        paths = [folder / f"{name}.{kind}" for name, _ in named for kind in formats]
        for path in paths:
            path.write_text("figure")
        return paths

    monkeypatch.setattr(static, "missing_requirement", lambda: None)
    monkeypatch.setattr(static, "_export", fake_export)
    target = tmp_path / "dotfile"
    target.write_text("mine\n")
    out = tmp_path / "figs"
    out.mkdir()
    (out / "forward-time.svg").symlink_to(target)
    written = static.export_figures([("forward-time", go.Figure())], out, formats=["svg"])
    assert written == [str(out / "forward-time.svg")]
    assert target.read_text() == "mine\n" and (out / "forward-time.svg").read_text() == "figure"
    assert sorted(p.name for p in out.iterdir()) == ["forward-time.svg"]  # the staging folder is gone


def test_a_session_beside_its_results_names_them_instead_of_copying_them(tmp_path):
    from effprof.analyse.session import FrameRecords

    results = _results(tmp_path, series=4)
    session = analyse(read(results), patterns=[PATTERN])
    session.source_sha256 = file_digest(results)
    session.save(session_path(results), records_in=results)
    data = json.loads(session_path(results).read_text())
    assert "records" not in data and data["records_in"] == "r.jsonl"
    loaded = Session.load(session_path(results))
    assert isinstance(loaded.records, FrameRecords) and list(loaded.records) == session.records
    assert loaded.fits == session.fits and loaded.patterns == session.patterns
    assert Session.load(session_path(results), records=False).records == []
    with results.open("a") as f:  # records appended since: the session no longer describes the file it names
        f.write(results.read_text().splitlines()[0] + "\n")
    with pytest.raises(SessionError, match="made from other records"):
        Session.load(session_path(results))
    for name in ("../r.jsonl", "/etc/passwd", ".r.jsonl", "", 5):
        session_path(results).write_text(json.dumps({**data, "records_in": name}))
        with pytest.raises(SessionError, match="records_in"):
            Session.load(session_path(results))


def test_figure_names_and_hover_text_from_records_are_not_plotly_markup(tmp_path):
    """plotly.js builds <a href>, <b>, <span style> from trace names, titles and hover text: names and configs
    from a results file reach the figures' JSON as entities (shown as typed), never as tags."""
    from effprof.render.html import render

    path = _results(tmp_path)
    text = path.read_text().replace("synthetic_00000", '<a href=\\"https://example.com\\">m</a>')
    path.write_text(text.replace('"d_model": 64', '"d_model": 64, "impl": "<b>bold</b>"'))
    page = render(analyse(read(path)))
    assert '"name":"\\u003ca href' not in page and '"text":"\\u003ca href' not in page and "=\\u003cb\\u003e" not in page
    assert '"name":"&lt;a href=\\"https:\\u002f\\u002fexample.com' in page and "impl=&lt;b&gt;bold" in page  # legendgroup: a key, not drawn
