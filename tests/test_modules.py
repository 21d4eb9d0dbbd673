"""Any PyTorch module as a mechanism: `--module pkg.mod:factory` (effprof/modules)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from effprof.cli import app
from effprof.config import ConfigError
from effprof.modules import module_spec, parse_claim
from effprof.registry import Claim

runner = CliRunner()
F = "tests.plugins.factories"
FAST = ["--max-time", "0.02"]


def _one_line_error(result, fragment: str) -> None:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and fragment in lines[0], result.output
    assert "Traceback" not in result.output


def _profile(*args: str) -> dict:
    result = runner.invoke(app, ["profile", *args, "--seq-len", "16", "--d-model", "16", "--json", *FAST])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_module_is_profiled_with_its_own_typed_keys():
    record = _profile("--module", f"{F}:mlp", "--param", "d_ff=32", "--param", "bias=false", "--param", "activation=relu",
                      "--param", "scale=0.5")
    assert record["status"] == "ok" and record["mechanism"] == f"{F}:mlp" and record["family"] == "module"
    assert (record["d_ff"], record["bias"], record["activation"], record["scale"]) == (32, False, "relu", 0.5)
    assert record["params"] == 2 * 16 * 32  # no biases
    assert record["flops_analytic"] is None and record["flops_counted"] > 0  # unknown, never 0
    assert record["claims"] == []


def test_a_factory_named_as_the_mechanism_works_too():
    assert _profile(f"{F}:mlp")["status"] == "ok"


def test_module_and_inputs_form_unwraps_tuple_outputs():
    record = _profile("--module", f"{F}:masked_attention")
    assert record["status"] == "ok" and record["flops_counted"] > 0


def test_train_mode_measures_backward():
    record = _profile("--module", f"{F}:masked_attention", "--mode", "train")
    assert record["status"] == "ok" and record["activation_bytes"] > 0


def test_decode_applies_to_modules_with_the_step_contract():
    assert module_spec(f"{F}:short_conv").modes == ("forward", "train", "decode")
    assert module_spec(f"{F}:mlp").modes == ("forward", "train")
    record = _profile("--module", f"{F}:short_conv", "--mode", "decode")
    assert record["status"] == "ok" and record["state_bytes"] > 0


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--module", f"{F}:raises"], "ValueError: no such layer in this checkpoint"),
        (["--module", f"{F}:wrong_shape"], "forward returned (1, 16, 129), expected (1, 16, 128)"),
        (["--module", f"{F}:not_a_module"], "returned a str"),
        (["--module", f"{F}:tuple_output"], "fails at d_model=128"),
        (["--module", f"{F}:inputs_do_not_fit"], "fails at d_model=128"),
        (["--module", f"{F}:needs_a_value"], "parameter 'rank' has no default"),
        (["--module", f"{F}:object_default"], "parameter 'layer' defaults to a Identity"),
        (["--module", f"{F}:NOT_CALLABLE"], "is a int, not a callable factory"),
        (["--module", f"{F}:nothing"], "has no attribute 'nothing'"),
        (["--module", "no_such_package_xyz:f"], "cannot import 'no_such_package_xyz'"),
        (["--module", ":f"], "is not pkg.module:factory"),
        (["--module", f"{F}:mlp", "--param", "bias=maybe"], "bias='maybe' is not a boolean"),
        (["--module", f"{F}:mlp", "--param", "d_ff=wide"], "d_ff='wide' is not an integer"),
        (["--module", f"{F}:mlp", "--param", "colour=red"], "unknown config key 'colour'"),
        (["--module", f"{F}:mlp", "--claim", "speed:seq_len=1"], "metric 'speed' is not one of"),
        (["--module", f"{F}:mlp", "mamba"], "profile measures one mechanism or --module, 2 given"),
        (["mamba", "--claim", "flops:seq_len=1"], "--claim applies to --module targets"),
    ],
)
def test_bad_factories_and_values_are_one_line_errors(args, fragment):
    _one_line_error(runner.invoke(app, ["profile", *args, "--seq-len", "16", *FAST]), fragment)


@pytest.mark.parametrize("text, fragment", [
    ("flops", "is not metric:axis=exponent"), ("flops:colour=1", "axis 'colour'"), ("flops:seq_len=x", "exponent 'x'"),
    ("flops:seq_len=nan", "exponent nan; accepted: a finite number within ±10"), ("flops:seq_len=11", "exponent 11.0; accepted"),
    ("flops:seq_len=1@sideways", "mode 'sideways'"),
    # a text key is no axis to scale along: --claim accepted it while a plugin's claim was refused (one rule now)
    ("flops:impl=2", "axis 'impl', which is not a numeric config key"),
])
def test_bad_claims_name_the_bad_part(text, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(")):
        parse_claim(text)


def test_claims_parse():
    assert parse_claim("flops:seq_len=2") == Claim("flops", "seq_len", 2.0, "forward")
    assert parse_claim("time:seq_len=1@decode") == Claim("time", "seq_len", 1.0, "decode")


def test_sweep_keeps_every_point_when_one_size_fails(tmp_path):
    out = tmp_path / "r.jsonl"
    result = runner.invoke(app, ["sweep", "--module", f"{F}:large_fails", "--vary", "seq_len=16,32,64", "--param", "d_model=16",
                                 "-o", str(out), *FAST])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["status"] for r in records] == ["ok", "ok", "error"]
    assert "at most 32 tokens" in records[2]["error"]


@pytest.mark.slow
def test_compare_fits_modules_beside_mechanisms_with_given_claims(tmp_path):
    report = tmp_path / "c.html"
    result = runner.invoke(app, ["compare", "softmax_attention", "--module", f"{F}:mlp", "--claim", "flops:seq_len=1",
                                 "--vary", "seq_len=16,32,64", "--param", "d_model=16", "--mode", "forward", "-o", str(report),
                                 "--json", *FAST])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    fit = next(f for f in data["fits"] if f["mechanism"] == f"{F}:mlp" and f["metric"] == "flops")
    assert fit["claimed"] == 1.0 and fit["verdict"] == "pass" and fit["analytic_exponent"] is None
    assert {r["mechanism"] for r in data["records"]} == {"softmax_attention", f"{F}:mlp"}
    assert all(isinstance(r.get("breakdown"), dict) for r in data["records"])  # compare stores the breakdown
    assert report.exists()


def test_scoped_params_reach_one_module(tmp_path):
    out = tmp_path / "r.jsonl"
    result = runner.invoke(app, ["sweep", "softmax_attention", "--module", f"{F}:mlp", "--param", f"{F}:mlp.d_ff=8",
                                 "--vary", "seq_len=16", "-o", str(out), "--param", "d_model=16", *FAST])
    assert result.exit_code == 0, result.output
    records = {r["mechanism"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert records[f"{F}:mlp"]["d_ff"] == 8 and "d_ff" not in records["softmax_attention"]


@pytest.mark.parametrize("value", ["٦٤", "６４", "6_4", "1_0.5"])
def test_a_factorys_own_numbers_take_ascii_digits_only(value):
    """The same rule as effprof's own keys: int()/float() would read these as numbers, the command refuses them."""
    key = "scale" if "." in value else "limit"
    target = "tests.plugins.factories:mlp" if key == "scale" else "tests.plugins.factories:large_fails"
    result = runner.invoke(app, ["profile", "--module", target, "--param", f"{key}={value}", "--seq-len", "16", "--d-model", "16"])
    assert result.exit_code == 2 and "ASCII digits" in result.output, result.output
