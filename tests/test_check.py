"""effprof check (CI gate), its check files, JUnit/GitHub output, baselines, and the pytest plugin."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from effprof.check import load_checks, make_check, needed_options, run_check
from effprof.cli import app
from effprof.config import ConfigError
from effprof.pytest_plugin import assert_scaling

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

LINEAR = '''
[[claims]]
name = "linear attention is linear"
mechanism = "linear_attention"
params = { d_model = 16, impl = "chunked", chunk_size = 8 }
mode = "forward"
axis = "seq_len"
values = [32, 64, 128, 256]
metric = "flops"
exponent = 1.0
tolerance = 0.1
'''
STATE = '''
[[claims]]
mechanism = "linear_attention"
params = { d_model = 16 }
mode = "decode"
axis = "seq_len"
values = [32, 64, 128]
metric = "state_bytes"
exponent = 0.0
'''
WRONG = LINEAR.replace('name = "linear attention is linear"', 'name = "wrongly quadratic"').replace("exponent = 1.0", "exponent = 2.0")


def invoke(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, ["check", *args], catch_exceptions=False, env=env)


def write(tmp_path: Path, text: str, name: str = "checks.toml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def line_of(text: str, fragment: str, occurrence: int = 1) -> int:
    lines = [i + 1 for i, line in enumerate(text.splitlines()) if fragment in line]
    return lines[occurrence - 1]


def test_passing_file_exits_0_with_a_table(tmp_path):
    result = invoke(write(tmp_path, LINEAR + STATE))
    assert result.exit_code == 0, result.output
    assert "linear_attention" in result.stdout and "state_bytes" in result.stdout
    assert result.stdout.count("pass") == 2 and "fail" not in result.stdout
    assert "2 of 2 checks hold" in result.stderr


def test_wrong_claim_exits_1_and_names_it(tmp_path):
    result = invoke(write(tmp_path, STATE + WRONG))
    assert result.exit_code == 1, result.output
    failed = [line for line in result.stderr.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1
    assert "wrongly quadratic" in failed[0] and "flops ∝ seq_len^2" in failed[0]
    assert "measured 1.000 [" in failed[0] and "claimed 2 ± 0.1" in failed[0]
    assert f"checks.toml:{line_of(STATE + WRONG, '[[claims]]', 2)}:" in failed[0]  # where the failing claim is defined
    assert "::error" not in result.output  # annotations only on GitHub Actions


def test_json_output(tmp_path):
    result = invoke(write(tmp_path, STATE + WRONG), "--json")
    assert result.exit_code == 1
    checks = json.loads(result.stdout)
    assert [c["verdict"] for c in checks] == ["pass", "fail"]
    assert checks[1]["claimed"] == 2.0 and checks[1]["exponent"] == pytest.approx(1.0, abs=0.01)
    assert checks[1]["ci_low"] <= checks[1]["exponent"] <= checks[1]["ci_high"]


def test_junit_xml_has_a_failure_for_the_failing_check(tmp_path):
    junit = tmp_path / "out" / "effprof.xml"
    result = invoke(write(tmp_path, STATE + WRONG), "--junit", str(junit))
    assert result.exit_code == 1
    root = ET.parse(junit).getroot()
    suite = root.find("testsuite")
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    cases = suite.findall("testcase")
    assert cases[0].find("failure") is None
    failure = cases[1].find("failure")
    assert "wrongly quadratic" in cases[1].get("name")
    assert "claimed 2" in failure.get("message") and "measured 1.000" in failure.get("message")


def test_github_actions_error_annotations(tmp_path):
    result = invoke(write(tmp_path, STATE + WRONG), env={"GITHUB_ACTIONS": "true"})
    assert result.exit_code == 1
    errors = [line for line in result.stdout.splitlines() if line.startswith("::error")]
    assert len(errors) == 1
    assert errors[0].startswith("::error title=effprof check,file=")
    assert f",line={line_of(STATE + WRONG, '[[claims]]', 2)}::" in errors[0]
    assert "wrongly quadratic" in errors[0] and "claimed 2" in errors[0]


def test_check_judges_its_own_claim_even_where_the_spec_claims_nothing():
    """params ∝ seq_len⁰: a constant metric no spec claims is still fitted and judged."""
    result = run_check(make_check("linear_attention", "seq_len", [32, 64, 128], "params", 0.0, params={"d_model": 16}))
    assert result.verdict == "pass" and result.fit["exponent"] == 0.0
    wrong = run_check(make_check("linear_attention", "seq_len", [32, 64, 128], "params", 1.0, params={"d_model": 16}))
    assert wrong.verdict == "fail"


def test_only_what_the_metric_needs_is_measured():
    assert needed_options({"flops"}) == needed_options({"flops"}, 0, 0.5)
    flops = needed_options({"flops"})
    assert flops.count_flops and not flops.timing and not flops.memory and not flops.fvcore
    memory = needed_options({"peak_bytes"})
    assert memory.memory and not memory.count_flops and not memory.timing
    assert needed_options({"time"}).timing
    result = run_check(make_check("linear_attention", "seq_len", [32, 64, 128], "flops", 1.0, params={"d_model": 16, "chunk_size": 8}))
    assert all(r["time_s"] is None and r["peak_bytes"] is None and r["flops_fvcore"] is None for r in result.records)


BAD_CASES = [
    # (file text, key named, the line's fragment, fragments of the message)
    (LINEAR.replace("exponent = 1.0", "expnent = 1.0"), "expnent", "expnent", ["unknown key", "accepted"]),
    (LINEAR.replace('metric = "flops"\n', ""), "metric", "[[claims]]", ["missing key"]),
    (LINEAR.replace("exponent = 1.0", 'exponent = "one"'), "exponent", "exponent =", ["number"]),
    (LINEAR.replace('"linear_attention"', '"linear_atention"'), "mechanism", "mechanism =", ["linear_atention", "did you mean 'linear_attention'"]),
    (LINEAR.replace('metric = "flops"', 'metric = "flop"'), "metric", "metric =", ["'flop'", "peak_bytes"]),
    (LINEAR.replace('mode = "forward"', 'mode = "fly"'), "mode", "mode =", ["'fly'", "decode"]),
    (LINEAR.replace("[32, 64, 128, 256]", "[32, 64]"), "values", "values =", ["three"]),
    (LINEAR.replace('impl = "chunked"', 'impl = "fast"'), "params", "params =", ["impl='fast'", "chunked"]),
    (LINEAR.replace("d_model = 16,", "bogus = 16,"), "params", "params =", ["'bogus'", "config key"]),
    (LINEAR.replace('axis = "seq_len"', 'axis = "impl"'), "axis", "axis =", ["'impl'", "seq_len"]),
    (LINEAR.replace("tolerance = 0.1", "tolerance = -1"), "tolerance", "tolerance =", [">= 0"]),
    (STATE + LINEAR.replace('metric = "flops"', "metric = 3"), "metric", "metric = 3", ["claim 2", "string"]),
    (LINEAR.replace('params = { d_model = 16, impl = "chunked", chunk_size = 8 }\n', "")
     + '[claims.params]\nd_model = 16\nimpl = "nope"\n', "params", "[claims.params]", ["impl='nope'"]),
    ('baseline = "missing.jsonl"\n' + LINEAR, "baseline", "baseline =", ["does not exist"]),
    ('baseline = "b.jsonl"\n[regression]\nflop = 1.0\n' + LINEAR, "flop", "flop = 1.0", ["not a metric"]),
    ("colour = 1\n" + LINEAR, "colour", "colour =", ["unknown key", "claims"]),
]


@pytest.mark.parametrize("text, key, fragment, words", BAD_CASES)
def test_bad_check_file_is_one_line_naming_key_and_line(text, key, fragment, words, tmp_path):
    (tmp_path / "b.jsonl").write_text("")
    path = write(tmp_path, text)
    result = invoke(path)
    message = _one_error_line(result)
    assert f"{path}:{line_of(text, fragment)}:" in message, message
    assert f"key {key!r}" in message
    for word in words:
        assert word in message, message


def test_bad_toml_and_missing_files(tmp_path, monkeypatch):
    bad = "[[claims]]\nmechanism = linear_attention\n"
    assert f"{tmp_path / 'bad.toml'}:2:" in _one_error_line(invoke(write(tmp_path, bad, "bad.toml")))
    assert "does not exist" in _one_error_line(invoke(str(tmp_path / "nope.toml")))
    monkeypatch.chdir(tmp_path)
    assert "'pyproject.toml' does not exist" in _one_error_line(invoke())
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    message = _one_error_line(invoke())
    assert "no [tool.effprof.check]" in message and "[[tool.effprof.check.claims]]" in message


def test_pyproject_section_form_and_its_lines(tmp_path):
    text = '[project]\nname = "x"\n\n' + LINEAR.replace("[[claims]]", "[[tool.effprof.check.claims]]").replace(
        'mode = "forward"', 'mode = "sideways"')
    (tmp_path / "pyproject.toml").write_text(text)
    message = _one_error_line(invoke(str(tmp_path / "pyproject.toml")))
    assert f":{line_of(text, 'mode =')}:" in message and "'sideways'" in message


def _one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in result.output, result.output
    return lines[0]


def test_baseline_regression(tmp_path):
    base = tmp_path / "base.jsonl"
    assert invoke(write(tmp_path, LINEAR), "-o", str(base)).exit_code == 0
    checks = 'baseline = "base.jsonl"\n[regression]\nflops = 1.0\n' + LINEAR
    assert invoke(write(tmp_path, checks)).exit_code == 0  # same code, same FLOPs
    records = [json.loads(line) for line in base.read_text().splitlines()]
    records[-1]["flops_counted"] *= 0.9  # the baseline was 10% cheaper at seq_len=256
    base.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = invoke(write(tmp_path, checks))
    assert result.exit_code == 1
    assert "regressed" in result.stderr and "seq_len=256" in result.stderr and "allowed ×1" in result.stderr


def _regressed(metric, new, old, ratio, iqr_new, iqr_old):
    from effprof.analyse.session import change

    return change(metric, new, old, iqr_new, iqr_old, allowed=ratio)[0] == "worse"


def test_time_regression_needs_to_exceed_the_noise():
    assert _regressed("time", 1.30, 1.0, 1.10, 0.05, 0.05)  # 30% slower, IQRs of 5%
    assert not _regressed("time", 1.30, 1.0, 1.10, 0.2, 0.2)  # within the two IQRs
    assert not _regressed("time", 1.05, 1.0, 1.10, 0.0, 0.0)  # within the allowance
    # counted quantities: the one baseline rule (analysis.change) allows 0.5% beyond the allowed ratio, as the report does
    assert _regressed("flops", 1.01, 1.0, 1.0, None, None) and not _regressed("flops", 1.0 + 1e-6, 1.0, 1.0, None, None)
    assert _regressed("peak_bytes", 1.06, 1.0, 1.05, None, None) and not _regressed("peak_bytes", 1.05, 1.0, 1.05, None, None)


def test_assert_scaling_passes_for_a_true_claim():
    fit = assert_scaling("linear_attention", axis="seq_len", values=[32, 64, 128, 256], metric="flops", exponent=1.0,
                         tol=0.1, d_model=16, impl="chunked", chunk_size=8)
    assert fit["exponent"] == pytest.approx(1.0, abs=0.02)


def test_assert_scaling_says_measured_claimed_and_ci():
    with pytest.raises(AssertionError) as failed:
        assert_scaling("linear_attention", axis="seq_len", values=[32, 64, 128], metric="flops", exponent=2.0,
                       tol=0.1, params={"d_model": 16, "chunk_size": 8})
    message = str(failed.value)
    assert "measured 1.0" in message and "[" in message and "claimed 2 ± 0.1" in message


def test_assert_scaling_fixture_and_bad_arguments(effprof_scaling):
    assert effprof_scaling is assert_scaling
    with pytest.raises(ConfigError, match="values"):
        effprof_scaling("linear_attention", axis="seq_len", values=[32, 64], metric="flops", exponent=1.0)
    with pytest.raises(ConfigError, match="metric"):
        effprof_scaling("linear_attention", axis="seq_len", values=[32, 64, 128], metric="speed", exponent=1.0)


def test_plugin_entry_point_is_declared():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["pytest11"] == {"effprof": "effprof.pytest_plugin"}


def test_pyprojects_own_checks_load():
    suite = load_checks(ROOT / "pyproject.toml")
    claims = {(c.mechanism, c.mode, c.metric, c.exponent) for c in suite.checks}
    assert ("softmax_attention", "forward", "flops", 2.0) in claims
    assert ("linear_attention", "forward", "flops", 1.0) in claims
    assert ("linear_attention", "decode", "state_bytes", 0.0) in claims
    assert ("softmax_attention", "forward", "peak_bytes", 1.0) in claims
    assert all(c.metric != "time" for c in suite.checks)  # wall time is too noisy on shared CI
    assert all(c.line and c.points for c in suite.checks)


INCONCLUSIVE = '''
[[claims]]
name = "three sizes cannot separate two terms"
mechanism = "softmax_attention"
params = { d_model = 16 }
axis = "seq_len"
values = [32, 64, 128]
metric = "flops"
exponent = 2.0
'''


def test_inconclusive_fails_the_gate_unless_allowed(tmp_path):
    result = invoke(write(tmp_path, INCONCLUSIVE), "--json")
    assert result.exit_code == 1
    (check,) = json.loads(result.stdout)
    assert check["verdict"] == "inconclusive" and check["verdict_reason"].startswith("too few sizes")
    assert "inconclusive" in check["message"] and "256" in check["message"]  # names sizes that would decide
    allowed = INCONCLUSIVE + "allow_inconclusive = true\n"
    result = invoke(write(tmp_path, allowed, "allowed.toml"))
    assert result.exit_code == 0 and "1 inconclusive (allowed)" in result.stderr


def test_allow_inconclusive_must_be_a_boolean(tmp_path):
    text = INCONCLUSIVE + 'allow_inconclusive = "yes"\n'
    result = invoke(write(tmp_path, text))
    assert result.exit_code == 2
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and "allow_inconclusive" in message and "'yes'" in message
    assert f":{line_of(text, 'allow_inconclusive')}:" in message


def test_log_power_with_a_value_of_one_is_refused_naming_it(tmp_path):
    text = LINEAR.replace("values = [32, 64, 128, 256]", "values = [1, 2, 4, 8]") + "log_power = 1\n"
    result = invoke(write(tmp_path, text))
    assert result.exit_code == 2
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and "seq_len = 1" in message and "above 1" in message
    with pytest.raises(ConfigError, match="seq_len = 1"):
        make_check("linear_attention", "seq_len", [1, 2, 4], "flops", 1.0, log_power=1.0)


def test_deeply_nested_toml_is_one_line(tmp_path):
    result = invoke(write(tmp_path, "x = " + "[" * 100_000 + "]" * 100_000 + "\n"))
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "nested too deeply" in result.stderr


def test_junit_strips_characters_xml_cannot_carry():
    from effprof.check import CheckResult, junit_xml

    check = make_check("linear_attention", "seq_len", [32, 64, 128], "state_bytes", 0.0, mode="decode",
                       params={"d_model": 16}, name="bell\x07 escape\x1b[31m nul\x00 ok\ttab")
    results = [CheckResult(check, "fail", None, error="no fit\x0c here"), CheckResult(check, "pass", None)]
    root = ET.fromstring(junit_xml(results).split("\n", 1)[1])  # parses
    names = [case.get("name") for case in root.iter("testcase")]
    assert all("\x07" not in n and "\x1b" not in n and "\x00" not in n for n in names)
    assert "bell escape[31m nul ok\ttab" in names[0]
    assert root.find("testsuite").get("failures") == "1"


def test_assert_scaling_fails_when_inconclusive():
    with pytest.raises(AssertionError, match="inconclusive.*too few sizes"):
        assert_scaling("softmax_attention", axis="seq_len", values=[32, 64, 128], metric="flops", exponent=2.0, d_model=16)
