"""Labels for the paper (issue 25): --label NAME="text" in every figure, table, LaTeX, CSV and HTML (report, compare,
the check file), and variants read as words by default (impl=recurrent -> recurrent)."""

from __future__ import annotations

import csv
import json

import pytest
from typer.testing import CliRunner

from effprof.analyse.frames import add_labels, variant_words
from effprof.analyse.session import analyse
from effprof.check import load_checks
from effprof.cli import app
from effprof.render.figures import metric_figures
from effprof.render.labels import apply, parse_labels
from effprof.store.records import to_frame
from tests.test_cli import assert_bad_input
from tests.test_crossings import _mamba2_like

runner = CliRunner()


def test_variants_read_as_words_by_default():
    labelled = add_labels(to_frame(_mamba2_like()), "seq_len")
    assert set(labelled["series"]) == {"mamba2 [recurrent]", "mamba2 [chunked]"}  # was "mamba2 [impl=recurrent]"
    assert variant_words({"impl": "chunked", "d_model": 64}) == "chunked, d_model=64"  # numbers keep their key
    with pytest.raises(TypeError, match="never parsed back"):
        variant_words("impl=chunked,d_model=64")  # the text form is for display only


def test_labels_parse_and_refuse_what_names_nothing():
    labels = parse_labels(['mamba2="Mamba-2 (ours)"', "impl=recurrent=sequential scan", "tests.plugins.mylayers:build_conv=Gated conv"])
    assert labels == {"mamba2": "Mamba-2 (ours)", "impl=recurrent": "sequential scan", "tests.plugins.mylayers:build_conv": "Gated conv"}
    session = analyse(apply(_mamba2_like(), {"mamba2": "Mamba-2 (ours)", "impl=recurrent": "sequential scan"}))
    names = {t.name for _, _, fig in metric_figures(session.frame, session.fits_frame) for t in fig.data if t.showlegend is not False and t.name}
    assert {"Mamba-2 (ours) [sequential scan]", "Mamba-2 (ours) [chunked]"} <= names


def test_report_labels_reach_html_latex_csv_and_report_writes_beside_its_results(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _mamba2_like()))
    result = runner.invoke(app, ["report", "m.jsonl", "--label", "mamba2=Mamba-2 <ours>", "--label", "impl=recurrent=sequential scan",
                                 "--latex", "m.tex", "--csv", "m.csv"], catch_exceptions=False)
    assert result.exit_code == 0, result.output  # no -o: "Missing option '--output'" before
    page = (tmp_path / "m.html").read_text()
    assert "Mamba-2 &lt;ours&gt; [sequential scan]" in page and "Mamba-2 <ours>" not in page  # labels are escaped like any data
    tex = (tmp_path / "m.tex").read_text()
    assert "Mamba-2 \\textless{}ours\\textgreater{}" in tex and "Mamba-2 <ours>" not in tex
    assert "sequential scan" in tex and "impl=recurrent" not in tex
    with open(tmp_path / "m.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["mechanism"] for r in rows} == {"Mamba-2 <ours>"} and {r["name"] for r in rows} == {"mamba2"}
    assert "Mamba-2 <ours> [chunked]" in (tmp_path / "m_crossovers.csv").read_text()
    assert_bad_input(runner.invoke(app, ["report", "m.jsonl", "--label", "mamba3=x"]), "--label 'mamba3' names nothing", "did you mean 'mamba2'?")
    assert_bad_input(runner.invoke(app, ["report", "m.jsonl", "--label", "mamba2"]), "is not NAME=")


def test_compare_refuses_a_label_before_measuring():
    result = runner.invoke(app, ["compare", "softmax_attention", "-v", "seq_len=16,32,64", "--label", "softmax_atention=S"])
    assert_bad_input(result, "--label 'softmax_atention' names nothing this compare measures", "did you mean 'softmax_attention'?")


def test_check_file_labels(tmp_path):
    path = tmp_path / "checks.toml"
    claim = ('[[claims]]\nmechanism = "linear_attention"\nparams = { d_model = 16 }\naxis = "seq_len"\nvalues = [32, 64, 128]\n'
             'metric = "flops"\nexponent = 1.0\n')
    path.write_text(claim + '[labels]\nlinear_attention = "Linear attention (ours)"\n')
    (check,) = load_checks(path).checks
    assert check.shown == "Linear attention (ours)" and check.label.startswith("Linear attention (ours) forward")
    path.write_text(claim + "[labels]\nlinear_attention = \"'Ours'\"\n")  # quoted as --label quotes: shown as --label shows it
    (check,) = load_checks(path).checks
    assert check.shown == "Ours"
    path.write_text(claim + '[labels]\nsoftmax_attention = "S"\n')
    result = runner.invoke(app, ["check", str(path)], catch_exceptions=False)
    assert_bad_input(result, "label 'softmax_attention' names no mechanism of these claims")
