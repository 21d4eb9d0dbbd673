"""Property-based: hundreds of bad invocations across the commands all end the same way —
exit code 2, one line naming the problem, no traceback, no output file left behind."""

from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from effprof.cli import app
from effprof.config import KEYS

runner = CliRunner()
SIZE_KEYS = ("seq_len", "d_model", "batch", "n_heads", "block_size", "gen_len")
INT_KEYS = sorted(k for k, info in KEYS.items() if info.type is int and info.positive and k in SIZE_KEYS)
words = st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=1, max_size=12)
not_a_number = words.filter(lambda s: not s.lstrip("-").isdigit())
bad_int = st.one_of(not_a_number, st.integers(max_value=0).map(str), st.floats(allow_nan=False).filter(lambda f: not f.is_integer()).map(repr))


@st.composite
def bad_invocation(draw) -> list[str]:
    kind = draw(st.sampled_from([
        "unknown_mechanism", "unknown_key", "bad_int", "bad_impl", "bad_mode", "bad_dtype", "bad_device",
        "param_syntax", "vary_empty", "vary_bad_value", "vary_unknown_key", "missing_results", "bad_output_suffix",
        "merge_missing", "bad_max_memory", "timeout_without_isolate", "absurd_size",
        "non_ascii_digits", "repeated_param", "vary_over_param", "repeated_vary_value", "huge_grid", "timeout_not_finite",
        "max_memory_too_small",
    ]))
    sweep = ["sweep", "softmax_attention", "-o", "out.jsonl"]
    if kind == "non_ascii_digits":  # int() would take each of these as a number
        digits = draw(st.sampled_from(["٦٤", "６４", "6_4", "१२८", "1_024", "𝟔𝟒"]))
        return ["profile", "softmax_attention", "--param", f"{draw(st.sampled_from(INT_KEYS))}={digits}"]
    if kind == "repeated_param":
        return ["profile", "softmax_attention", "--param", "d_model=16", "--param", f"d_model={draw(st.integers(1, 64))}"]
    if kind == "vary_over_param":
        return [*sweep, "--vary", "seq_len=16,32", "--param", f"seq_len={draw(st.integers(1, 64))}"]
    if kind == "repeated_vary_value":
        value = draw(st.integers(1, 64))
        return [*sweep, "--vary", f"seq_len={value},32,{draw(st.sampled_from([str(value), '0' + str(value)]))}"]
    if kind == "huge_grid":
        n = draw(st.integers(101, 400))
        return [*sweep, "--vary", "seq_len=" + ",".join(map(str, range(1, n + 1))), "--vary", "d_model=" + ",".join(map(str, range(1, 101)))]
    if kind == "timeout_not_finite":
        return [*sweep, "--vary", "seq_len=16", "--isolate", "--timeout", draw(st.sampled_from(["inf", "1e300", "nan", "1e9"]))]
    if kind == "max_memory_too_small":
        return [*sweep, "--vary", "seq_len=16", "--isolate", "--max-memory", draw(st.sampled_from(["1", "1K", "63M", "0.01G"]))]
    if kind == "unknown_mechanism":
        return ["profile", draw(words.filter(lambda w: w not in ("softmax_attention",))) + "_nope"]
    if kind == "unknown_key":
        return ["profile", "softmax_attention", "--param", f"{draw(words)}_zz={draw(words)}"]
    if kind == "bad_int":
        key = draw(st.sampled_from(INT_KEYS))
        return ["profile", "softmax_attention", "--param", f"{key}={draw(bad_int)}"]
    if kind == "bad_impl":
        return ["profile", "linear_attention", "--param", f"impl={draw(words)}_x"]
    if kind == "bad_mode":
        return ["sweep", "softmax_attention", "--vary", "seq_len=16,32", "--mode", draw(words) + "_m", "-o", "out.jsonl"]
    if kind == "bad_dtype":
        return ["profile", "softmax_attention", "--dtype", draw(words) + "_t"]
    if kind == "bad_device":
        return ["profile", "softmax_attention", "--device", draw(st.sampled_from(["tpu", "cuda", "cuda:7", "gpu0", "mps:x"]))]
    if kind == "param_syntax":
        return ["profile", "softmax_attention", "--param", draw(st.sampled_from(["impl", "=3", "seq_len=", "==", " = "]))]
    if kind == "vary_empty":
        return ["sweep", "softmax_attention", "--vary", draw(st.sampled_from(["seq_len=", "seq_len=,", "seq_len", "=1,2"])), "-o", "out.jsonl"]
    if kind == "vary_bad_value":
        return ["sweep", "softmax_attention", "--vary", f"seq_len=16,{draw(bad_int)}", "-o", "out.jsonl"]
    if kind == "vary_unknown_key":
        return ["compare", "softmax_attention", "--vary", f"{draw(words)}_k=1,2", "-o", "out.html"]
    if kind == "missing_results":
        command = draw(st.sampled_from(["fit", "report"]))
        tail = ["-o", "out.html"] if command == "report" else []
        return [command, f"missing_{draw(words)}.jsonl", *tail]
    if kind == "bad_output_suffix":
        return ["compare", "softmax_attention", "-o", f"out.{draw(st.sampled_from(['txt', 'json', 'png', 'jsonl']))}"]
    if kind == "merge_missing":
        return ["merge", f"missing_{draw(words)}.jsonl", "-o", "out.jsonl"]
    if kind == "bad_max_memory":
        return ["sweep", "softmax_attention", "--vary", "seq_len=16,32", "--isolate", "--max-memory", draw(not_a_number) + "Q", "-o", "out.jsonl"]
    if kind == "timeout_without_isolate":
        return ["sweep", "softmax_attention", "--vary", "seq_len=16,32", "--timeout", "5", "-o", "out.jsonl"]
    return ["sweep", "softmax_attention", "--vary", f"seq_len={draw(st.integers(2**21, 2**24))}", "--param", "impl=naive", "-o", "out.jsonl"]


@settings(max_examples=220, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=bad_invocation())
def test_bad_invocations_exit_2_with_one_line(args, tmp_path_factory, monkeypatch):
    workdir = tmp_path_factory.mktemp("bad")
    monkeypatch.chdir(workdir)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, (args, result.output)
    assert "Traceback" not in result.output, args
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), (args, result.output)
    assert not any(workdir.iterdir()), (args, list(workdir.iterdir()))  # nothing written, not even an empty file
