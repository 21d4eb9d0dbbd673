"""The measurement primitives: FLOP formulas, memory tracking, activation bytes, timing, records of one point."""

from __future__ import annotations

import math
import statistics

import pytest
import torch
import torch.nn.functional as F

from effprof.measure.flops import FORMULAS, FlopCounter, causal_pairs
from effprof.measure.harness import Options, measure_point
from effprof.measure.memory import LiveTensorTracker, activation_bytes, peak_bytes
from effprof.measure.timing import time_call
from effprof.store.records import SCHEMA_VERSION


def count(fn) -> FlopCounter:
    with FlopCounter() as c:
        fn()
    return c


def test_matmul_is_two_flops_per_multiply_add():
    a, b = torch.randn(3, 5), torch.randn(5, 7)
    assert count(lambda: a @ b).total == 2 * 3 * 5 * 7


def test_linear_with_bias_counts_the_add():
    x, w, bias = torch.randn(4, 6), torch.randn(8, 6), torch.randn(8)
    assert count(lambda: F.linear(x, w, bias)).total == 2 * 4 * 6 * 8 + 4 * 8


def test_elementwise_and_reductions():
    x = torch.randn(10, 20)
    assert count(lambda: torch.exp(x)).total == 200
    assert count(lambda: x + x).total == 200
    assert count(lambda: x.sum(dim=1)).total == 200
    assert count(lambda: torch.cumsum(x, 1)).total == 200
    assert count(lambda: torch.softmax(x, -1)).total == 5 * 200


def test_views_and_copies_are_free():
    x = torch.randn(10, 20)
    c = count(lambda: torch.cat([x.t().contiguous().view(-1), x.flatten()]))
    assert c.total == 0 and not c.unknown_ops


def test_fused_cpu_attention_is_counted_with_causal_masking():
    b, h, n, d = 1, 2, 64, 16
    q = torch.randn(b, h, n, d)
    full = count(lambda: F.scaled_dot_product_attention(q, q, q)).total
    causal = count(lambda: F.scaled_dot_product_attention(q, q, q, is_causal=True)).total
    assert full == b * h * n * n * (4 * d + 5)
    assert causal == b * h * causal_pairs(n, n) * (4 * d + 5)
    assert causal_pairs(n, n) == n * (n + 1) // 2


def test_fft_counts_n_log_n():
    x = torch.randn(4, 256)
    c = count(lambda: torch.fft.rfft(x))
    assert c.total == pytest.approx(2.5 * 4 * 256 * math.log2(256))


def test_complex_multiply_is_six_flops():
    z = torch.randn(10, dtype=torch.complex64)
    assert count(lambda: z * z).total == 60


def test_unknown_ops_are_reported_not_silently_zero():
    x = torch.randn(8, 8)
    c = count(lambda: torch.linalg.inv(x))
    assert c.unknown_ops


def test_backward_is_counted():
    w = torch.randn(6, 6, requires_grad=True)
    x = torch.randn(4, 6)
    c = count(lambda: (x @ w).sum().backward())
    assert c.by_op["mm"] == 2 * (2 * 4 * 6 * 6)  # forward and grad of w


def test_live_tracker_peak_of_temporaries():
    x = torch.randn(1000)  # 4000 bytes, allocated before: not counted

    def fn():
        a = x * 2  # +4000
        b = a * 2  # +4000 (peak 8000)
        del a
        return b.sum()

    with LiveTensorTracker() as tracker:
        fn()
    assert tracker.peak == 8000  # a and b together; the scalar sum comes after a is freed


def test_peak_bytes_ignores_views_but_counts_copies():
    x = torch.randn(100, 100)
    assert peak_bytes(lambda: x.reshape(-1)[:10].t(), "cpu") == 0
    assert peak_bytes(lambda: x.t().reshape(-1), "cpu") == 100 * 100 * 4  # non-contiguous: reshape copies


def test_activation_bytes_excludes_params_and_inputs():
    lin = torch.nn.Linear(32, 32, bias=False)
    x = torch.randn(8, 32, requires_grad=True)
    # y = relu(lin(x)): mm saves x (input, excluded) and W (param, excluded); relu saves its output (8·32·4 bytes)
    saved = activation_bytes(lambda: torch.relu(lin(x)), [*lin.parameters(), x])
    assert saved == 8 * 32 * 4


def test_time_call_gives_median_and_iqr():
    x = torch.randn(64, 64)
    timing = time_call(lambda: x @ x, "cpu", threads=1, max_time_s=0.2)
    assert timing.median_s > 0 and timing.iqr_s >= 0 and timing.reps >= 1


@pytest.mark.parametrize("mode", ["forward", "train", "decode"])
def test_measure_point_fills_the_record(mode):
    record = measure_point("softmax_attention", mode, {"seq_len": 64, "d_model": 32}, Options(max_time_s=0.05))
    assert record["status"] == "ok", record["error"]
    for field in ("flops_analytic", "flops_counted", "time_s", "time_iqr_s", "time_reps", "peak_bytes", "state_bytes", "params"):
        assert record[field] is not None and record[field] >= 0, field
    assert record["flops_counted"] == pytest.approx(record["flops_analytic"], rel=0.02)
    assert record["state_bytes"] == 2 * 64 * 32 * 4  # K and V cache, fp32
    if mode == "train":
        assert record["activation_bytes"] > 0
    for field in ("torch", "device_name", "threads", "effprof", "timestamp", "seq_len", "impl", "mechanism", "family"):
        assert field in record
    # the raw samples are kept, and the median is theirs; the machine's load is recorded beside them
    assert len(record["time_samples_s"]) == record["time_blocks"] >= 1
    assert statistics.median(record["time_samples_s"]) == pytest.approx(record["time_s"], rel=1e-9)
    assert record["time_noisy"] == (record["time_iqr_s"] / record["time_s"] > 0.10)
    assert record["load_avg_1m"] >= 0 and record["cpu_count"] >= 1
    assert record["schema"] == SCHEMA_VERSION


def test_a_stack_records_its_layer_kinds_nested():
    # five Jamba layers keep its attention layer (the fifth) and both FFN kinds; the test sizes keep it quick
    small = {"seq_len": 16, "d_model": 32, "batch": 1, "n_layers": 5, "chunk_size": 5, "d_state": 4, "d_ff": 16, "n_experts": 4}
    record = measure_point("jamba", "forward", small, Options(max_time_s=0.02, roofline=False, fvcore=False))
    assert record["status"] == "ok", record["error"]
    kinds = record["layer_kinds"]
    assert {"attention", "ssm"} <= set(kinds) and kinds["attention"]["flops_analytic"] > 0 and kinds["attention"]["time_s"] > 0
    assert sum(k.get("state_bytes", 0) for k in kinds.values()) == record["state_bytes"]
    assert sum(k.get("flops_analytic", 0) for k in kinds.values()) == pytest.approx(record["flops_analytic"])
    assert not any(key.startswith(("time_s_", "analytic_flops_", "state_bytes_a")) for key in record if key != "state_bytes_analytic")


def test_naive_attention_peak_memory_grows_quadratically_tiled_linearly():
    options = Options(timing=False, fvcore=False, count_flops=False)
    peaks = {}
    for impl in ("naive", "tiled"):
        small = measure_point("softmax_attention", "forward", {"impl": impl, "seq_len": 256, "d_model": 32}, options)
        large = measure_point("softmax_attention", "forward", {"impl": impl, "seq_len": 1024, "d_model": 32}, options)
        peaks[impl] = math.log(large["peak_bytes"] / small["peak_bytes"], 4)
    assert peaks["naive"] > 1.7
    assert peaks["tiled"] < 1.2


def test_a_failing_point_becomes_a_record(monkeypatch):
    """An error inside a mechanism ends that point only: a record with status, message and the analytic figures."""
    from effprof.measure import harness

    def broken(*args, **kwargs):
        raise RuntimeError("boom inside the mechanism")

    monkeypatch.setattr(harness, "make_workload", broken)
    record = measure_point("softmax_attention", "forward", {"seq_len": 16, "d_model": 16}, Options(timing=False))
    assert record["status"] == "error" and "boom inside the mechanism" in record["error"]
    assert record["flops_analytic"] > 0 and record["flops_counted"] is None

    def out_of_memory(*args, **kwargs):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8 GB")

    monkeypatch.setattr(harness, "make_workload", out_of_memory)
    assert measure_point("softmax_attention", "forward", {"seq_len": 16, "d_model": 16}, Options(timing=False))["status"] == "oom"


def test_determinism_same_config_same_figures_and_outputs():
    import effprof

    options = Options(timing=False, fvcore=False)
    config = {"seq_len": 48, "d_model": 32, "impl": "chunked", "chunk_size": 16}
    first = measure_point("linear_attention", "decode", config, options)
    second = measure_point("linear_attention", "decode", config, options)
    for field in ("flops_counted", "state_bytes", "peak_bytes", "params"):
        assert first[field] == second[field], field
    assert first["seed"] == 0
    x = torch.randn(1, 48, 32, generator=torch.Generator().manual_seed(3))
    a, b = effprof.build("linear_attention", **config), effprof.build("linear_attention", **config)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))
    assert not torch.equal(effprof.build("linear_attention", seed=1, **config).q_proj.weight, a.q_proj.weight)


def test_time_by_layer_kind_accounts_each_kind():
    from effprof.measure.harness import time_by_layer_kind

    class Stack(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.big, self.small = torch.nn.Linear(512, 512), torch.nn.Linear(512, 8)

        def layer_kinds(self):
            return [("big", self.big), ("small", self.small)]

        def forward(self, x):
            return self.small(self.big(x))

    stack, x = Stack(), torch.randn(256, 512)
    times = time_by_layer_kind(stack, lambda: stack(x))
    assert set(times) == {"big", "small"} and all(t > 0 for t in times.values())
    assert times["big"] > times["small"]  # 64× the FLOPs


def test_accumulating_index_put_is_counted_a_plain_one_is_free():
    x, idx, v = torch.zeros(10), torch.tensor([1, 1, 3]), torch.ones(3)
    assert count(lambda: x.clone().index_put_((idx,), v, accumulate=True)).total == 3
    assert count(lambda: x.clone().index_put_((idx,), v)).total == 0


# The fused attention formulas read is_causal at a fixed position of each kernel's schema; on CPU only
# the first pair runs, so the CUDA positions are checked against the schemas themselves.
@pytest.mark.parametrize("op,position", [
    ("_scaled_dot_product_flash_attention_for_cpu", 4), ("_scaled_dot_product_flash_attention_for_cpu_backward", 7),
    ("_scaled_dot_product_flash_attention", 4), ("_scaled_dot_product_flash_attention_backward", 11),
    ("_scaled_dot_product_efficient_attention", 6), ("_scaled_dot_product_efficient_attention_backward", 11),
    ("_scaled_dot_product_cudnn_attention", 6), ("_scaled_dot_product_cudnn_attention_backward", 14),
])
def test_attention_formulas_read_is_causal_where_the_schema_has_it(op, position):
    schema = getattr(torch.ops.aten, op).default._schema
    assert schema.arguments[position].name == "is_causal"
    q = torch.empty(2, 3, 16, 8, device="meta")
    args = [q, q, q] if "backward" not in op else [q, q, q, q]
    args += [None] * (position - len(args)) + [True]
    full = FORMULAS[getattr(torch.ops.aten, op)](tuple(args[:position]) + (False,), {}, (q,))
    causal = FORMULAS[getattr(torch.ops.aten, op)](tuple(args), {}, (q,))
    assert causal == full * (16 * 17 // 2) / (16 * 16)  # causal pairs of 16 queries and keys


def test_a_form_that_cannot_run_here_is_recorded_unsupported_not_error(monkeypatch):
    """mamba impl=chunked_c where its kernel is not built (EFFPROF_KERNELS=0): the point says so (status
    unsupported, naming the reason), while the kernel, where built, trains; an ordinary failure stays an error."""
    from effprof import kernels
    from effprof.measure.harness import Options, measure_point

    quick = Options(max_time_s=0.01, fvcore=False, roofline=False)
    config = {"seq_len": 16, "d_model": 16, "impl": "chunked_c"}
    if kernels.load("selective_scan") is not None:
        assert measure_point("mamba", "train", config, quick)["status"] == "ok"
    monkeypatch.setenv("EFFPROF_KERNELS", "0")
    kernels.load.cache_clear()
    try:
        record = measure_point("mamba", "train", config, quick)
    finally:
        monkeypatch.delenv("EFFPROF_KERNELS")
        kernels.load.cache_clear()
    assert record["status"] == "unsupported" and "EFFPROF_KERNELS=0" in record["error"]
    assert measure_point("mamba", "train", {"seq_len": 16, "d_model": 16, "impl": "chunked"}, quick)["status"] == "ok"
