"""effprof course: the weeks' labs, the week-16 projects checked, and explain --results.

The checker's tests run each template's solution (tests/course/) and planted mistakes through it at small sizes;
whole labs run under -m slow.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from effprof.cli import app
from effprof.course import get_lab, weeks
from effprof.course.check import check_project, load_student
from effprof.course.lab import Finding, Lab, Sweep
from effprof.course.projects import PROJECTS, project_of_week

runner = CliRunner()
HERE = Path(__file__).parent / "course"
SIZES = (32, 64, 128, 256)  # the scaling measurement at small sizes (the CLI's default is 128 … 1024)
FILES = {"linear_attention": "linear_attention", "mamba": "mamba", "sliding_window": "sliding_window", "moe_topk": "moe_router",
         "hybrid": "hybrid"}
PROJECT_SIZES = {"hybrid": (128, 256, 512, 1024)}  # the N² attention term dominates only from there at d_model 16


def _check(project: str, function: str):
    build = load_student(f"{HERE / FILES[project]}.py:{function}")
    return check_project(PROJECTS[project], build, sizes=PROJECT_SIZES.get(project, SIZES))


def _failed(results) -> dict[str, str]:
    return {r.name: r.detail for r in results if not r.passed}


# ---- the weeks --------------------------------------------------------------------------


def test_course_lists_every_week_with_its_mechanisms():
    result = runner.invoke(app, ["course"])
    assert result.exit_code == 0, result.output
    for week in (4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15):
        assert re.search(rf"│ {week}\s", result.output), week
    assert "linear_attention" in result.output and "moe_expert_choice" in result.output
    assert weeks() == [4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15]


@pytest.mark.parametrize("week", [4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15])
def test_every_lab_plans_valid_points(week):
    """Each lab's sweeps are planned (configs validated) by effprof.runner.plan, at sizes that run in about a minute."""
    from effprof.course.run import lab_points

    lab = get_lab(week)
    points = lab_points(lab)
    assert 4 <= len(points) <= 60
    assert lab.looks and lab.concept and lab.week == week


@pytest.mark.parametrize("args", [["course", "14"], ["course", "3"], ["course", "4", "--template"], ["course", "12", "--check", "x.py:build"],
                                  ["course", "--check", "x.py:build"], ["course", "7", "--template", "--check", "x.py:build"],
                                  ["course", "4", "-o", "page.txt"]])
def test_bad_course_input_is_one_line_exit_2(args):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert "accepted" in result.output or "not both" in result.output or "must end in .html" in result.output


def test_looks_without_measurements_say_not_measured():
    """A look whose point failed (or was never measured) says so, never a number of its own."""
    from effprof.analyse.session import analyse
    from effprof.course.run import read_look

    session = analyse([])
    for week in weeks():
        for look in get_lab(week).looks:
            finding = read_look(look, session, {})
            assert "not measured" in finding.measured or "not measured" in finding.look_at, (week, look.__name__, finding)
            assert not re.search(r"N\^\d", finding.measured), (week, finding)


def test_a_tiny_lab_reports_what_it_measured(tmp_path):
    """A lab run end to end at tiny sizes: each number printed is the session's own, and the page escapes it."""
    from effprof.course import read
    from effprof.course.page import lab_section
    from effprof.course.run import run_lab

    lab = dataclasses.replace(get_lab(4), sweeps=(Sweep(("softmax_attention",), {"seq_len": [16, 32, 64], "impl": ["naive", "sdpa"]},
                                                         config={"d_model": 16}),), timing=False)
    result = run_lab(lab, tmp_path / "lab.jsonl")
    assert len(result.session.records) == 6 and (tmp_path / "lab.jsonl").exists()
    flops = result.findings[0]
    expected = read.exponent(read.fit(result.session, "softmax_attention", "flops", "forward", impl="naive"))
    assert flops.measured.startswith(f"∝ N^{expected:.2f} (claimed N^2: ")  # the fit's own figure and verdict
    assert "not measured" not in " ".join(f.measured for f in result.findings)
    section = lab_section(result)
    assert "What to look at" in section and "Week 4: Attention" in section and "Plotly" in section  # the drawn pattern P
    hostile = dataclasses.replace(result, findings=[Finding("<script>alert(1)</script>", "<b>", "&")])
    section = lab_section(hostile)
    assert "<script>alert" not in section and "&lt;script&gt;" in section


def test_probes_measure_the_forms_and_rules():
    from effprof.course.probes import attention_matrix, discretisations, forms_agree

    table = forms_agree("linear_attention", seq_len=24, chunk_size=8)
    assert [row[0] for row in table["rows"]] == ["parallel", "recurrent", "chunked"]
    assert max(row[1] for row in table["rows"]) < 1e-4
    rules = discretisations(seq_len=32)
    assert abs(rules["gap_per_cube"] - 1 / 12) < 0.01  # exp(x) − (1 + x/2)/(1 − x/2) = −x³/12 + O(x⁴)
    matrix = attention_matrix(seq_len=12)
    assert matrix["mass_above_diagonal"] == 0 and matrix["row_sum_error"] < 1e-5


# ---- the projects -----------------------------------------------------------------------


@pytest.mark.parametrize("project", sorted(PROJECTS))
def test_template_is_printed_with_its_todos(project):
    week = PROJECTS[project].week
    result = runner.invoke(app, ["course", str(week), "--template"])
    assert result.exit_code == 0, result.output
    assert result.output == PROJECTS[project].template_text()
    assert "TODO" in result.output and "def build(config: dict, weights: dict)" in result.output
    assert project_of_week(week).name == project


@pytest.mark.parametrize("project", sorted(PROJECTS))
def test_the_empty_template_fails_the_check_and_says_why(project, tmp_path):
    path = tmp_path / "mine.py"
    path.write_text(PROJECTS[project].template_text())
    results = check_project(PROJECTS[project], load_student(f"{path}:build"), sizes=SIZES)
    failed = _failed(results)
    assert any("NotImplementedError" in detail and "TODO" in detail for detail in failed.values()), failed


@pytest.mark.parametrize("project", sorted(PROJECTS))
def test_each_solution_passes_every_check(project):
    results = _check(project, "build")
    assert not _failed(results), _failed(results)
    names = [r.name for r in results]
    assert "outputs: equal to the reference's on the same weights" in names and "gradients: equal to the reference's" in names
    assert any(n.startswith("causal") for n in names) and any(n.startswith("decode: prefill + steps") for n in names)
    assert any(n.startswith("scaling: FLOPs in forward") for n in names)


MISTAKES = [
    # (project, function, the check that catches it, words the message must hold)
    ("linear_attention", "build_noncausal", "causal: outputs up to t ignore tokens after t", "sees the future"),
    ("linear_attention", "build_no_denominator", "outputs: equal to the reference's on the same weights", "the normalisation is wrong"),
    ("linear_attention", "build_growing_state", "scaling: decode state in decode ∝ N^0", "your decode state grows with N"),
    ("linear_attention", "build_growing_state", "decode: state bytes = the cost model's", "a state that grows"),
    ("linear_attention", "build_relu", "outputs: equal to the reference's on the same weights", "differs from the reference's"),
    ("sliding_window", "build_dense", "scaling: FLOPs in forward ∝ N^1", "masking a dense matrix keeps it dense"),
    ("sliding_window", "build_off_by_one", "outputs: equal to the reference's on the same weights", "tokens before 5 agree"),
    ("moe_topk", "build_no_renormalisation", "outputs: equal to the reference's on the same weights", "the normalisation is wrong"),
    ("moe_topk", "build_all_experts", "scaling: FLOPs in forward ∝ top_k^1", "every expert runs on every token"),
    ("moe_topk", "build_softmax_over_tokens", "causal: outputs up to t ignore tokens after t", "sees the future"),
    ("mamba", "build_centred_conv", "causal: outputs up to t ignore tokens after t", "sees the future"),
    ("mamba", "build_missing_skip", "outputs: equal to the reference's on the same weights", "out_proj (input)"),
    ("hybrid", "build_no_residual", "outputs: equal to the reference's on the same weights", "differs from the reference's"),
    ("hybrid", "build_forgetful", "decode: prefill + steps = forward", "the recurrent (decode) form disagrees"),
]


@pytest.mark.parametrize("project,function,check,words", MISTAKES, ids=[m[1] for m in MISTAKES])
def test_each_planted_mistake_is_caught_and_named(project, function, check, words):
    failed = _failed(_check(project, function))
    assert check in failed, failed
    assert words in failed[check], failed[check]


def test_check_command_exit_codes_and_plain_words():
    good = runner.invoke(app, ["course", "7", "--check", f"{HERE / 'linear_attention.py'}:build"])
    assert good.exit_code == 0, good.output
    assert "every check passed" in good.output and "FAIL" not in good.output
    bad = runner.invoke(app, ["course", "7", "--check", f"{HERE / 'linear_attention.py'}:build_noncausal"])
    assert bad.exit_code == 1, bad.output
    assert "FAIL" in bad.output and "sees the future" in bad.output


@pytest.mark.parametrize("target,words", [("missing.py:build", "no file"), ("linear_attention:build", "FILE.py:FUNCTION"),
                                          ("{here}/linear_attention.py:nothing", "has no function 'nothing'"),
                                          ("{broken}:build", "importing")])
def test_bad_check_targets_are_one_line_exit_2(target, words, tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("import no_such_module_anywhere\n")
    result = runner.invoke(app, ["course", "7", "--check", target.format(here=HERE, broken=broken)])
    assert result.exit_code == 2, result.output
    assert words in result.output and len(result.output.strip().splitlines()) == 1


def test_a_build_that_returns_no_module_is_a_failed_check(tmp_path):
    path = tmp_path / "wrong.py"
    path.write_text("def build(config, weights):\n    return 42\n")
    failed = _failed(check_project(PROJECTS["linear_attention"], load_student(f"{path}:build"), sizes=SIZES))
    assert any("not a torch.nn.Module" in detail for detail in failed.values()), failed


# ---- explain --results ------------------------------------------------------------------


def test_explain_results_shows_measured_exponents_beside_the_claims(tmp_path):
    from effprof.store.records import write_all
    from effprof.store.synthetic import records as synthetic

    records = list(synthetic(series=1, sizes=4, exponents=(2.0, 1.0)))  # flops = n² + n exactly, state constant
    for record in records:  # as softmax_attention's naive form would claim them
        record.update(mechanism="softmax_attention", family="attention", impl="naive",
                      claims=[["flops", "seq_len", 2.0, 0.0], ["state_bytes", "seq_len", 1.0, 0.0]])
    path = tmp_path / "r.jsonl"
    write_all(path, records)
    result = runner.invoke(app, ["explain", "softmax_attention", "--results", str(path), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)["measured"]
    flops = [r for r in rows if r["metric"] == "flops" and r["mode"] == "forward"]
    assert flops and flops[0]["verdict"] == "pass" and abs(flops[0]["measured"] - 2) < 0.05, flops
    train = [r for r in rows if r["mode"] == "train" and r["metric"] == "flops"]
    assert train[0]["verdict"] == "not measured" and "train mode" in train[0]["reason"]
    state = [r for r in rows if r["metric"] == "state_bytes"]
    assert state[0]["verdict"] == "fail" and abs(state[0]["measured"]) < 0.05  # a constant cache: the claim of N¹ fails
    tiled = [r for r in rows if r["where"] == "impl=tiled"]
    assert tiled and tiled[0]["verdict"] == "not measured"  # measured naive only: the tiled claim is not judged by it
    text = runner.invoke(app, ["explain", "softmax_attention", "--results", str(path)])
    assert text.exit_code == 0 and "claims beside the exponents measured in" in text.output
    other = runner.invoke(app, ["explain", "mamba", "--results", str(path)])
    assert other.exit_code == 2 and "holds no record of 'mamba'" in other.output
    missing = runner.invoke(app, ["explain", "mamba", "--results", str(tmp_path / "none.jsonl")])
    assert missing.exit_code == 2 and "Traceback" not in missing.output


def test_claims_beside_fits_judges_only_matching_series():
    """A fit of another variant, mode or claimed exponent never stands for a claim."""
    from effprof.registry import get_spec
    from effprof.render.claims import claims_beside_fits

    spec = get_spec("softmax_attention")
    fits = [{"mechanism": "softmax_attention", "metric": "peak_bytes", "axis": "seq_len", "mode": "forward", "variant": "impl=sdpa",
             "config": {"impl": "sdpa"},
             "claimed": 2.0, "leading_exponent": 1.0, "verdict": "fail"}]
    rows = claims_beside_fits(spec, fits)
    naive = [r for r in rows if r["metric"] == "peak_bytes" and r["where"] == "impl=naive"]
    assert naive and naive[0]["verdict"] == "not measured"


# ---- whole labs (slow) ------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("week", [4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15])
def test_each_week_runs_and_prints_measured_findings(week, tmp_path):
    result = runner.invoke(app, ["course", str(week), "-o", str(tmp_path / "week.html")])
    assert result.exit_code == 0, result.output
    assert "What to look at" in result.output and (tmp_path / "week.html").exists() and (tmp_path / "week.jsonl").exists()
    lab: Lab = get_lab(week)
    assert result.output.count("• ") == len(lab.looks)
    assert "not measured" not in result.output
    page = (tmp_path / "week.html").read_text()
    assert f"Week {week}: " in page and "What to look at" in page and "<h2" in page
