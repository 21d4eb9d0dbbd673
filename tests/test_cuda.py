"""The CUDA paths, proven against the CPU: outputs, counted FLOPs, allocator peaks, state and activation
bytes, half precision, synchronised timing.

Every test that needs a GPU carries the `cuda` marker and is skipped, with the reason, where torch sees no
CUDA device (`python3 -m pytest -m cuda` then collects and skips them, exit 0). A test whose logic also holds
on CPU is parametrised over devices: its CPU variant runs in the default suite, so the check is known to be
able to fail before it ever meets a GPU. scripts/device-check.sh runs this file on the GPU machine.

What CUDA changes, and so what is checked here:
- kernels: torch picks flash / memory-efficient / cuDNN attention on CUDA (the CPU has one flash kernel),
  cuBLAS and cuDNN instead of the CPU's BLAS; effprof's compiled selective-scan kernel is CPU-only, so the
  Mamba family must run its torch form there. Each kernel has its own FLOP formula (measure/flops.py).
- memory: peaks come from the caching allocator's statistics, not the CPU's live-tensor tracker.
- time: CUDA launches are asynchronous; a timer that does not synchronise times the launch, not the work.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import torch

import effprof
from effprof.config import resolve_config
from effprof.measure.flops import FlopCounter
from effprof.measure.memory import activation_bytes, peak_bytes
from effprof.measure.timing import time_call
from effprof.measure.workload import make_workload
from effprof.mechanisms.base import provides, state_nbytes, state_tensors
from effprof.mechanisms.ssm.selective_scan import KernelUnsupported, check_kernel_inputs
from effprof.registry import AUTO, MODES, get_spec, resolve_impl
from tests.helpers import case_id, impl_cases, tiny


def _no_cuda_reason() -> str | None:
    if torch.cuda.is_available():
        return None
    if torch.version.cuda is None:
        return f"no CUDA device: torch {torch.__version__} is built without CUDA"
    return f"no CUDA device: torch {torch.__version__} (CUDA {torch.version.cuda}) sees none"


NO_CUDA = _no_cuda_reason()
CUDA_ONLY = [pytest.mark.cuda, pytest.mark.skipif(NO_CUDA is not None, reason=NO_CUDA or "")]
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA_ONLY)]
HALF = ("bfloat16", "float16")

CASES = impl_cases()
CAUSAL_CASES = [c for c in CASES if get_spec(c[0]).causal]
# The compiled forms run on the CPU in float32 only (mamba impl=chunked_c): they are refused on CUDA and in half
# precision, so the device and dtype tests take every other form (impl=auto among them: it runs the torch form there).
# impl=auto runs the kernel in CPU float32 and the torch form elsewhere: checks that compare one form across
# devices or dtypes take the forms by name (test_ssm runs auto in half precision and in train).
COMPILED = {"chunked_c"}
ANY_DEVICE = [c for c in CASES if c[1].get("impl") not in COMPILED | {"auto"}]
ANY_DEVICE_CAUSAL = [c for c in ANY_DEVICE if get_spec(c[0]).causal]
HEAVY_FAMILIES = ("hybrid",)  # whole stacks: their CPU variants run with -m slow


# Flaky and not yet explained, kept visible rather than hidden by a wider bound: zamba's float16 activation bytes
# came to 0.4997 of float32's (1008000 against 2017280, just under the 0.5 floor) in two runs of the slow suite and
# to 0.5002 (1011072 against 2021376) in others, on the same code. Found 2026-12-07; see the closing note.
KNOWN_DEVIATIONS = {("zamba", "float16"): "zamba fp16/fp32 activation ratio is 0.4997 in some runs, 0.5002 in others: unexplained"}


def on_devices(cases: list, dtypes: tuple[str, ...] = ("float32",)) -> list:
    """(case, device, dtype) for every case on CPU and CUDA. The CPU variants that run by default are the
    cheap ones that show the check can fail: each mechanism's default impl, with bfloat16 standing for both
    half types; the other impls, float16 and whole stacks (one more copy of what their layers' variants
    check) run with -m slow. Every CUDA variant runs with -m cuda."""
    params = []
    for case in cases:
        spec = get_spec(case[0])
        heavy = spec.family in HEAVY_FAMILIES or case[1].get("impl", spec.defaults.get("impl")) != spec.defaults.get("impl")
        for dtype in dtypes:
            slow = heavy or dtype == "float16"
            cpu_marks = [pytest.mark.slow] if slow else []
            if (case[0], dtype) in KNOWN_DEVIATIONS:
                cpu_marks.append(pytest.mark.xfail(reason=KNOWN_DEVIATIONS[case[0], dtype], strict=False))
            params.append(pytest.param(case, "cpu", dtype, marks=cpu_marks, id=f"{case_id(case)}-cpu-{dtype}"))
            params.append(pytest.param(case, "cuda", dtype, marks=CUDA_ONLY, id=f"{case_id(case)}-cuda-{dtype}"))
    return params


def _cuda_test(function):
    """Mark a test as needing CUDA: the `cuda` marker, and a skip with the reason where there is none."""
    for mark in CUDA_ONLY:
        function = mark(function)
    return function


@contextmanager
def _no_tf32() -> Iterator[None]:
    """fp32 on CUDA as the CPU computes it: TF32 rounds matmul and convolution inputs to 10 mantissa bits."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _config(name: str, overrides: dict[str, Any], device: str, dtype: str = "float32") -> dict[str, Any]:
    return resolve_config(get_spec(name), {**tiny(name), **overrides, "device": device, "dtype": dtype})


def _input(config: dict[str, Any]) -> torch.Tensor:
    """(b, n, d) drawn on the CPU with a fixed seed, then moved: the same numbers on every device."""
    x = torch.randn(config["batch"], config["seq_len"], config["d_model"], generator=torch.Generator().manual_seed(1))
    return x.to(device=config["device"], dtype=getattr(torch, config["dtype"]))


def _relative_error(y: torch.Tensor, reference: torch.Tensor) -> float:
    y, reference = y.detach().double().cpu(), reference.detach().double().cpu()
    return float((y - reference).norm() / reference.norm().clamp_min(1e-30))


# --- outputs -------------------------------------------------------------------------------------------


@_cuda_test
@pytest.mark.parametrize("case", ANY_DEVICE, ids=case_id)
def test_cuda_output_equals_cpu(case):
    """fp32 on CUDA (TF32 off) computes what the CPU computes, the forward and, for causal mechanisms, the
    prefill state and a decode step."""
    name, overrides = case
    cpu, cuda = _config(name, overrides, "cpu"), _config(name, overrides, "cuda")
    reference, module = effprof.build(name, **cpu).eval(), effprof.build(name, **cuda).eval()
    x_cpu, x_cuda = _input(cpu), _input(cuda)
    with torch.no_grad(), _no_tf32():
        torch.testing.assert_close(module(x_cuda).cpu(), reference(x_cpu), rtol=1e-4, atol=1e-4)
        if get_spec(name).causal:
            _, state_cuda = module.prefill(x_cuda)
            _, state_cpu = reference.prefill(x_cpu)
            for got, want in zip(state_tensors(state_cuda), state_tensors(state_cpu), strict=True):
                assert got.is_cuda
                torch.testing.assert_close(got.cpu(), want, rtol=1e-4, atol=1e-4)
            y_cuda, _ = module.step(x_cuda[:, :1], state_cuda)
            y_cpu, _ = reference.step(x_cpu[:, :1], state_cpu)
            torch.testing.assert_close(y_cuda.cpu(), y_cpu, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("case", "device", "dtype"), on_devices(ANY_DEVICE, HALF))
def test_half_precision_output_is_close_to_fp32(case, device, dtype):
    """bf16 / fp16 on `device` stays within half precision's error of the CPU's fp32 output (relative L2 error:
    bf16 keeps 8 mantissa bits, fp16 11; a layer's sums and exponentials grow that to a few 1e-3)."""
    name, overrides = case
    reference_config, config = _config(name, overrides, "cpu"), _config(name, overrides, device, dtype)
    reference, module = effprof.build(name, **reference_config).eval(), effprof.build(name, **config).eval()
    with torch.no_grad():
        y = module(_input(config))
        expected = reference(_input(reference_config))
    assert y.dtype == getattr(torch, dtype) and y.device.type == device
    assert torch.isfinite(y).all()
    assert _relative_error(y, expected) < (5e-2 if dtype == "bfloat16" else 1e-2)


# --- FLOPs ---------------------------------------------------------------------------------------------


def _count(name: str, config: dict[str, Any], mode: str) -> tuple[FlopCounter, float]:
    module = effprof.build(name, **config)
    work = make_workload(module, config, mode)
    with FlopCounter() as counter:
        work.run()
    return counter, counter.total / work.per_call


@_cuda_test
@pytest.mark.parametrize("dtype", ("float32", "bfloat16"))
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", [*CASES, ("softmax_attention", {"impl": "sdpa", "n_heads": 4, "n_kv_heads": 2})], ids=case_id)
def test_cuda_counted_flops_equal_analytic(case, mode, dtype):
    """On CUDA the dispatcher's count equals the cost model in every mode, with no op uncounted; fp32 sends
    sdpa to the memory-efficient kernel, bf16 to flash (grouped-query sdpa in fp32 is the case to watch: the
    memory-efficient kernel takes no GQA, and torch's fallback is its unfused math path, which computes every
    (query, key) pair). The CPU-only compiled kernels never run there."""
    name, overrides = case
    spec = get_spec(name)
    if mode not in spec.modes:
        pytest.skip(f"{name} has no {mode} mode")
    config = _config(name, overrides, "cuda", dtype)
    counter, counted = _count(name, config, mode)
    assert not counter.unknown_ops, f"ops with no FLOP formula: {dict(counter.unknown_ops)}"
    assert not counter.custom_ops, f"CPU kernels ran on CUDA: {dict(counter.custom_ops)}"
    assert counted == pytest.approx(spec.cost(config, mode).flops, rel=0.02), f"by op: {dict(counter.by_op)}"


def _backends() -> list:
    from torch.nn.attention import SDPBackend

    return [
        pytest.param(SDPBackend.FLASH_ATTENTION, "_scaled_dot_product_flash_attention", id="flash"),
        pytest.param(SDPBackend.EFFICIENT_ATTENTION, "_scaled_dot_product_efficient_attention", id="efficient"),
        pytest.param(SDPBackend.CUDNN_ATTENTION, "_scaled_dot_product_cudnn_attention", id="cudnn"),
    ]


@_cuda_test
@pytest.mark.parametrize("mode", ("forward", "train"))
@pytest.mark.parametrize(("backend", "kernel"), _backends())
@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("softmax_attention", {"impl": "sdpa"}),  # is_causal=True: the causal half of the pairs
        ("softmax_attention", {"impl": "sdpa", "n_heads": 4, "n_kv_heads": 2}),  # grouped-query
        ("sliding_window", {"impl": "fused"}),  # a precomputed float -inf band bias, no is_causal
    ],
    ids=["causal", "gqa", "masked"],
)
def test_cuda_fused_attention_kernels_are_counted(name, overrides, backend, kernel, mode):
    """Each CUDA attention kernel, forced in turn, is the op that runs and is counted as the cost model says
    (its causal masking included); a kernel this device or config does not offer is skipped, with torch's why."""
    from torch.nn.attention import sdpa_kernel

    config = _config(name, {**overrides, "seq_len": 64, "d_model": 64}, "cuda", "bfloat16")
    try:
        with sdpa_kernel(backend):
            counter, counted = _count(name, config, mode)
    except RuntimeError as error:
        pytest.skip(f"{kernel} not available here: {' '.join(str(error).split())[:200]}")
    assert counter.calls[kernel] > 0, f"{kernel} did not run: {dict(counter.calls)}"
    if mode == "train":
        assert counter.calls[kernel + "_backward"] > 0, f"{kernel}_backward did not run: {dict(counter.calls)}"
    assert not counter.unknown_ops, f"ops with no FLOP formula: {dict(counter.unknown_ops)}"
    assert counted == pytest.approx(get_spec(name).cost(config, mode).flops, rel=0.02), f"by op: {dict(counter.by_op)}"


def test_compiled_scan_is_refused_off_the_cpu():
    """The selective-scan kernel reads CPU float32 pointers: tensors on any other device (meta stands in for
    CUDA here) or in half precision are refused at its boundary (use impl=chunked); CPU float32 passes."""
    b, n, d, N = 1, 6, 8, 4

    def inputs(device: str, dtype: torch.dtype) -> list[torch.Tensor]:
        shapes = ((b, n, d), (b, n, d), (d, N), (b, n, N), (b, n, N), (d,), (b, n, d))
        return [torch.zeros(shape, device=device, dtype=dtype) for shape in shapes]

    with pytest.raises(KernelUnsupported, match="CPU in float32"):
        check_kernel_inputs(*inputs("meta", torch.float32))
    with pytest.raises(KernelUnsupported, match="CPU in float32"):
        check_kernel_inputs(*inputs("cpu", torch.bfloat16))
    check_kernel_inputs(*inputs("cpu", torch.float32))


# --- memory --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ("forward", "train"))
@pytest.mark.parametrize(("case", "device", "dtype"), on_devices(ANY_DEVICE))
def test_peak_bytes_above_baseline(case, device, dtype, mode):
    """The peak is above what was held before the call (parameters, inputs), and at least what the call must
    allocate: its output in forward, the parameters' gradients in train."""
    name, overrides = case
    config = _config(name, overrides, device, dtype)
    module = effprof.build(name, **config)
    work = make_workload(module, config, mode)
    peak = peak_bytes(work.run, device)
    if mode == "forward":
        x = work.inputs[0]
        assert peak >= x.numel() * x.element_size()  # y: the same shape as x
    else:
        assert peak >= sum(p.numel() * p.element_size() for p in module.parameters() if p.requires_grad)


@pytest.mark.parametrize("dtype", ("float32", "bfloat16"))
@pytest.mark.parametrize("device", DEVICES)
def test_naive_attention_peaks_above_fused_and_tiled(device, dtype):
    """At n = 1024 the naive form holds the (b, h, n, n) score matrix; sdpa and tiled hold O(n) per head."""
    peaks = {}
    for impl in ("naive", "sdpa", "tiled"):
        config = _config(
            "softmax_attention", {"impl": impl, "batch": 1, "seq_len": 1024, "d_model": 64, "block_size": 128}, device, dtype
        )
        work = make_workload(effprof.build("softmax_attention", **config), config, "forward")
        peaks[impl] = peak_bytes(work.run, device)
    scores = config["n_heads"] * 1024 * 1024 * torch.tensor([], dtype=getattr(torch, dtype)).element_size()
    assert peaks["naive"] >= scores, peaks
    assert peaks["naive"] > peaks["sdpa"] and peaks["naive"] > peaks["tiled"], peaks


def _bytes_by_kind(state) -> tuple[int, int]:
    """(bytes of real floating-point state tensors, bytes of the rest: positions, counts, complex SSM states)."""
    floating, other = 0, 0
    for t in state_tensors(state):
        if t.is_floating_point():
            floating += t.numel() * t.element_size()
        else:
            other += t.numel() * t.element_size()
    return floating, other


@pytest.mark.parametrize(("case", "device", "dtype"), on_devices(ANY_DEVICE_CAUSAL, HALF))
def test_half_precision_halves_state_bytes(case, device, dtype):
    """In bf16 / fp16 the floating-point decode state is half its fp32 size; integer positions and counts and
    complex SSM states (s4 computes in complex64 whatever the model dtype) keep theirs. The total is the cost
    model's figure in that dtype."""
    name, overrides = case
    sizes = {}
    for d in ("float32", dtype):
        config = _config(name, overrides, device, d)
        with torch.no_grad():
            _, state = effprof.build(name, **config).prefill(_input(config))
        sizes[d] = (state_nbytes(state), _bytes_by_kind(state))
    (_, (float32, other32)), (total16, (float16, other16)) = sizes["float32"], sizes[dtype]
    assert float16 * 2 == float32 and other16 == other32
    assert total16 == pytest.approx(get_spec(name).cost(config, "decode").state_bytes, rel=0.02)


FLOAT32_INSIDE = {"s4": "computes its SSM in float32 / complex64 whatever the model dtype"}


@pytest.mark.parametrize(("case", "device", "dtype"), on_devices(ANY_DEVICE, HALF))
def test_half_precision_halves_activation_bytes(case, device, dtype, monkeypatch):
    """Bytes saved for backward halve in bf16 / fp16, up to the few tensors kept in their own types
    (integer indices and masks, fp32 log-sum-exps): the ratio lies in [0.5, 0.6]."""
    name, overrides = case
    if get_spec(name).family == "hybrid":  # a stack's mamba layers resolve auto per dtype (the compiled scan in float32 only):
        from effprof import kernels  # the torch form at both precisions, as impl=auto's form is pinned below for mamba alone

        monkeypatch.setattr(kernels, "load", lambda name: None)
    # one form at both precisions: impl=auto runs the compiled scan in float32 on CPU and the torch form in half
    form = resolve_impl(get_spec(name), _config(name, overrides, device, dtype), "train").impl
    saved = {}
    for d in ("float32", dtype):
        config = _config(name, overrides, device, d)
        if config.get("impl") == AUTO:
            config["impl"] = form
        module = effprof.build(name, **config)
        work = make_workload(module, config, "train")
        forward = module.training_loss if provides(module, "training_loss") else module
        exclude = [*module.parameters(), *module.buffers(), *work.inputs]
        saved[d] = activation_bytes(lambda forward=forward, x=work.inputs[0]: forward(x), exclude)
    ratio = saved[dtype] / saved["float32"]
    if name in FLOAT32_INSIDE:
        assert ratio > 0.9, f"{name} {FLOAT32_INSIDE[name]}: expected no halving, got {ratio:.3f}"
    else:
        assert 0.5 <= ratio <= 0.6, saved


@_cuda_test
@pytest.mark.parametrize("case", CAUSAL_CASES, ids=case_id)
def test_cuda_state_bytes_equal_cpu(case):
    name, overrides = case
    sizes = []
    for device in ("cpu", "cuda"):
        config = _config(name, overrides, device)
        with torch.no_grad():
            _, state = effprof.build(name, **config).prefill(_input(config))
        sizes.append(state_nbytes(state))
    assert sizes[0] == sizes[1]


# --- time ----------------------------------------------------------------------------------------------


def _matmul(device: str):
    """A product long enough to time: 8192² bf16 on CUDA (1.1 TFLOP, about 1.5 ms on an H100-class GPU),
    384² fp32 on CPU (a few ms on one core)."""
    n, dtype = (8192, torch.bfloat16) if device == "cuda" else (384, torch.float32)
    a = torch.randn(n, n, device=device, dtype=dtype)
    return lambda: a @ a


def _reference_times(fn, device: str, repeats: int = 5) -> list[float]:
    """Each call timed on its own: by CUDA events on the GPU's clock, by perf_counter on the CPU."""
    times = []
    for _ in range(repeats):
        if device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        else:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return times


@pytest.mark.parametrize("device", DEVICES)
def test_timer_waits_for_the_work(device):
    """effprof's timer reports at least half the time the work itself takes (a lower bound from its quickest
    run, so a noisy neighbour cannot fail it). On CUDA the launch alone returns long before the product is done,
    which this test checks first: an unsynchronised timer would report that launch and fail the bound."""
    fn = _matmul(device)
    fn()
    work = min(_reference_times(fn, device))
    if device == "cuda":
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        launch = time.perf_counter() - t0
        torch.cuda.synchronize()
        assert launch < 0.5 * work, f"the product is not asynchronous here ({launch=:.2e} s, {work=:.2e} s)"
    timing = time_call(fn, device, threads=torch.get_num_threads(), max_time_s=0.3)
    assert timing.median_s >= 0.5 * work, f"{timing.median_s=:.2e} s for work of {work:.2e} s"
    assert statistics.median(timing.samples_s) >= 0.5 * work


def test_cuda_figures_are_read_from_the_device_measured(monkeypatch):
    """cuda:N is measured on GPU N: the allocator statistics and the synchronisation name it, and the timer
    (which synchronises the current GPU only) runs with it current. Recorded with stand-ins, so it runs here."""
    seen: list[tuple[str, Any]] = []

    def record(name: str, result: Any = 0):
        def stand_in(device: Any = None) -> Any:
            seen.append((name, device))
            return result

        return stand_in

    @contextmanager
    def current(device: Any) -> Iterator[None]:
        seen.append(("current", device))
        yield

    for name in ("synchronize", "memory_allocated", "reset_peak_memory_stats", "max_memory_allocated"):
        monkeypatch.setattr(torch.cuda, name, record(name))
    monkeypatch.setattr(torch.cuda, "device", current)
    peak_bytes(lambda: None, "cuda:1")
    time_call(lambda: None, "cuda:1", threads=1, max_time_s=0.01, warmup=1)
    assert seen and all(device == "cuda:1" for _, device in seen), seen
    assert {name for name, _ in seen} == {
        "synchronize",
        "memory_allocated",
        "reset_peak_memory_stats",
        "max_memory_allocated",
        "current",
    }
