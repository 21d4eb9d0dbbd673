"""The sparse family: fast forms equal their masked references, the exposed pattern is exactly what
the fast form attends, key counts follow the config, decode matches forward, patterns at n = 4096
never allocate an n×n float tensor, and the pattern page renders without torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import effprof
from effprof.config import resolve_config
from effprof.measure.flops import FlopCounter
from effprof.measure.workload import make_workload
from effprof.mechanisms.base import state_nbytes
from effprof.mechanisms.sparse.bigbird import bigbird_blocked, bigbird_plan, random_blocks
from effprof.mechanisms.sparse.longformer import longformer_blocked, longformer_plan
from effprof.mechanisms.sparse.pairs import plan_pairs
from effprof.mechanisms.sparse.pattern import pattern_data, with_patterns
from effprof.mechanisms.sparse.sliding_window import window_blocked, window_plan
from effprof.mechanisms.sparse.sparse_transformer import fixed_plan, sparse_transformer_blocked, strided_plan
from effprof.registry import get_spec, list_mechanisms
from effprof.render.patterns import write_pattern_html

N, BATCH, D_MODEL = 37, 2, 32  # 37: no block or chunk size divides it, so padding is exercised

VARIANTS = [
    ("sliding_window", {"window": 5, "dilation": 1, "block_size": 4}),
    ("sliding_window", {"window": 4, "dilation": 3, "block_size": 3}),
    ("sparse_transformer", {"pattern": "fixed", "stride": 5, "n_summary": 2}),
    ("sparse_transformer", {"pattern": "strided", "stride": 4}),
    ("longformer", {"window": 5, "n_global": 3, "block_size": 4}),
    ("longformer", {"window": 3, "n_global": 0, "block_size": 2}),
    ("bigbird", {"block_size": 3, "window": 6, "n_global": 4, "n_random_blocks": 2}),
    ("bigbird", {"block_size": 4, "window": 4, "n_global": 0, "n_random_blocks": 0}),
    ("reformer", {"n_buckets": 4, "n_hashes": 1, "chunk_size": 3}),
    ("reformer", {"n_buckets": 4, "n_hashes": 3, "chunk_size": 2}),
    ("routing", {"n_clusters": 3, "window": 3}),
    ("routing", {"n_clusters": 2, "window": 8}),
    ("topk_attention", {"top_k": 4, "block_size": 3, "n_selected_blocks": 2}),
    ("topk_attention", {"top_k": 20, "block_size": 4, "n_selected_blocks": 5}),
    ("block_sparse", {"block_size": 3, "n_selected_blocks": 2, "window": 4}),
    ("block_sparse", {"block_size": 2, "n_selected_blocks": 6, "window": 1}),
]
SPARSE = sorted({name for name, _ in VARIANTS})


def variant_id(variant) -> str:
    name, overrides = variant
    return name + "".join(f"-{k}{v}" for k, v in overrides.items())


def build(name: str, n: int = N, batch: int = BATCH, **overrides):
    torch.manual_seed(0)
    return effprof.build(name, batch=batch, seq_len=n, d_model=D_MODEL, **overrides).eval()


def inputs(n: int = N, batch: int = BATCH, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, n, D_MODEL, generator=torch.Generator().manual_seed(seed))


def fast_impl(name: str) -> str:
    return next(impl for impl in get_spec(name).impls if impl != "masked")


def test_every_sparse_mechanism_has_masked_and_fast_impls():
    assert SPARSE == sorted(list_mechanisms("sparse"))
    for name in SPARSE:
        spec = get_spec(name)
        assert spec.impls[0] == "masked" and len(spec.impls) >= 2
        assert spec.defaults["impl"] != "masked", "the dense reference is never the default"
        assert spec.pattern is not None


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_fast_equals_masked(variant):
    """Same weights, same input: outputs and gradients of the fast form equal the dense reference."""
    name, overrides = variant
    reference = build(name, impl="masked", **overrides)
    fast = build(name, impl=fast_impl(name), **overrides)
    fast.load_state_dict(reference.state_dict())
    grad = torch.randn(BATCH, N, D_MODEL, generator=torch.Generator().manual_seed(2))
    results = []
    for module in (reference, fast):
        x = inputs().requires_grad_(True)
        y = module(x)
        y.backward(grad)
        results.append((y.detach(), x.grad, module.q_proj.weight.grad))
    for expected, actual in zip(results[0], results[1], strict=False):
        torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_pattern_is_what_the_fast_form_attends(variant):
    """Perturbing v_j changes exactly the outputs of the queries whose pattern holds j."""
    name, overrides = variant
    module = build(name, batch=1, impl=fast_impl(name), **overrides)
    x = inputs(batch=1)
    rows, cols = module.pattern(x)
    with torch.no_grad():
        q, k, v = module.project(x)
        base = module.fast(q, k, v)
        for j in range(N):
            v2 = v.clone()
            v2[:, :, j] += 1.0
            changed = ((module.fast(q, k, v2) - base).abs().amax(dim=(0, 1, 3)) > 1e-6).numpy()  # (n,)
            expected = np.zeros(N, dtype=bool)
            expected[rows[cols == j]] = True
            if name == "reformer":  # a token attends itself with weight e^-10⁴ unless alone: compare the others
                changed[j] = expected[j] = False
            np.testing.assert_array_equal(changed, expected, err_msg=f"key {j}")
    assert (cols <= rows).all(), "a query attends a future key"
    assert len(np.unique(rows)) == N, "every query attends something"


STATIC_REFERENCES = [
    (lambda n: window_plan(n, 5, 1, 4), lambda n: window_blocked(n, 5, 1)),
    (lambda n: window_plan(n, 4, 3, 3), lambda n: window_blocked(n, 4, 3)),
    (lambda n: fixed_plan(n, 5, 2), lambda n: sparse_transformer_blocked(n, "fixed", 5, 2)),
    (lambda n: strided_plan(n, 4), lambda n: sparse_transformer_blocked(n, "strided", 4, 0)),
    (lambda n: longformer_plan(n, 5, 3, 4), lambda n: longformer_blocked(n, 5, 3)),
    (lambda n: bigbird_plan(n, 3, 6, 4, 2), lambda n: bigbird_blocked(n, 3, 6, 4, 2)),
]


def dense_pairs(blocked: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of a dense (n, n) blocked mask: what a plan must attend (small n only)."""
    rows, cols = np.nonzero(~blocked)
    return rows, cols


@pytest.mark.parametrize("case", range(len(STATIC_REFERENCES)))
def test_static_plan_matches_dense_rule(case):
    """The gathered plan and the reference's closed-form n×n mask describe the same pairs."""
    from effprof.mechanisms.sparse.static import _static_plan

    plan_fn, dense_fn = STATIC_REFERENCES[case]
    plan = _static_plan(plan_fn, (N,), "cpu")
    rows, cols = plan_pairs(plan, N)
    expected_rows, expected_cols = dense_pairs(dense_fn(N))
    np.testing.assert_array_equal(rows * N + cols, expected_rows * N + expected_cols)


def test_reformer_plan_matches_dense_pattern():
    module = build("reformer", batch=1, n_buckets=4, n_hashes=3, chunk_size=2)
    x = inputs(batch=1)
    rows, cols = module.pattern(x)
    with torch.no_grad():
        q, _, _ = module.project(x)
        dense = module.dense_pattern(q)[0].any(dim=0).numpy()  # union over heads
    expected_rows, expected_cols = np.nonzero(dense)
    np.testing.assert_array_equal(rows * N + cols, expected_rows * N + expected_cols)


def counts(rows: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(rows, minlength=n)


def test_window_and_dilation_counts():
    w, δ = 4, 3
    rows, cols = build("sliding_window", batch=1, window=w, dilation=δ, block_size=3).pattern(inputs(batch=1))
    i = np.arange(N)
    np.testing.assert_array_equal(counts(rows, N), np.minimum(w, i // δ + 1))
    lag = rows - cols
    assert (lag % δ == 0).all() and (lag // δ < w).all()


def test_longformer_global_counts():
    w, g = 5, 3
    rows, cols = build("longformer", batch=1, window=w, n_global=g, block_size=4).pattern(inputs(batch=1))
    i = np.arange(N)
    np.testing.assert_array_equal(counts(rows, N), np.minimum(w, i + 1) + np.maximum(0, np.minimum(g, i - w + 1)))
    for j in range(g):  # global keys are attended by every later query
        np.testing.assert_array_equal(np.sort(rows[cols == j]), np.arange(j, N))


def test_sparse_transformer_counts():
    l, c = 5, 2
    i = np.arange(N)
    rows, _ = build("sparse_transformer", batch=1, pattern="fixed", stride=l, n_summary=c).pattern(inputs(batch=1))
    np.testing.assert_array_equal(counts(rows, N), i % l + 1 + c * (i // l))
    rows, _ = build("sparse_transformer", batch=1, pattern="strided", stride=l).pattern(inputs(batch=1))
    np.testing.assert_array_equal(counts(rows, N), np.minimum(l, i + 1) + i // l)


def test_bigbird_block_counts():
    B, w, g, r = 3, 6, 4, 2
    rows, cols = build("bigbird", batch=1, block_size=B, window=w, n_global=g, n_random_blocks=r).pattern(inputs(batch=1))
    for i in range(N):
        keys = cols[rows == i]
        I = i // B
        window = keys[(I - keys // B < w // B) & (keys >= g)]
        assert len(window) == i + 1 - max(g, (I - w // B + 1) * B, 0) if i >= g else len(window) == 0
        assert (keys[keys < g] == np.arange(min(g, i + 1))).all()
        random = keys[(I - keys // B >= w // B) & (keys >= g)]
        picked = np.unique(random // B)
        eligible = max(0, I - w // B - g // B + 1)
        assert len(picked) == min(r, eligible), f"query {i}: random blocks {picked}"
        assert set(picked) == set(random_blocks(np.array([I]), w // B, g // B, r)[0][:len(picked)])
        assert all((random // B == blk).sum() == B - max(0, g - blk * B) for blk in picked), "random blocks are whole"


def test_block_sparse_and_topk_counts():
    B, c, w = 3, 2, 4  # one head: the pattern is the union over heads, and heads pick different blocks
    rows, cols = build("block_sparse", batch=1, n_heads=1, block_size=B, n_selected_blocks=c, window=w).pattern(inputs(batch=1))
    i = np.arange(N)
    eligible = np.maximum(0, (i // B * B - w + 1) // B)  # blocks ending before the window of the block's first query
    np.testing.assert_array_equal(counts(rows, N), np.minimum(w, i + 1) + B * np.minimum(c, eligible))
    picked = rows - cols >= w
    np.testing.assert_array_equal(np.bincount(rows[picked] * N + cols[picked] // B) % B, 0)  # whole blocks
    for I in range(-(-N // B)):  # one choice per query block
        choices = {tuple(np.unique(cols[picked & (rows == i)] // B)) for i in range(I * B, min(N, I * B + B))}
        assert len(choices) == 1, f"block {I}: {choices}"
    k = 4
    rows, _ = build("topk_attention", batch=1, n_heads=1, top_k=k, block_size=B, n_selected_blocks=c).pattern(inputs(batch=1))
    np.testing.assert_array_equal(counts(rows, N), np.minimum(k, i % B + 1 + B * np.minimum(c, i // B)))


def test_routing_counts():
    w = 3
    module = build("routing", batch=1, n_clusters=3, window=w)
    x = inputs(batch=1)
    rows, cols = module.pattern(x)
    with torch.no_grad():
        q, k, _ = module.project(x)
        cluster_q, cluster_k = module.route(q)[0].numpy(), module.route(k)[0].numpy()  # (h, n)
    expected = set()
    for head in range(module.n_heads):
        for i in range(N):
            mine = [j for j in range(i + 1) if cluster_k[head, j] == cluster_q[head, i]][-w:]
            expected.update((i, j) for j in mine + [i])
    assert set(zip(rows.tolist(), cols.tolist(), strict=False)) == expected


@pytest.mark.parametrize("name", ["reformer", "routing"])
def test_hashing_is_per_token(name):
    """Buckets and clusters are permutation-consistent: h(x_π) = h(x)_π, and one token at a time equals all at once."""
    module = build(name, batch=1, **({"n_buckets": 8, "n_hashes": 3} if name == "reformer" else {"n_clusters": 5}))
    assign = module.hash if name == "reformer" else module.route
    with torch.no_grad():
        q, _, _ = module.project(inputs(batch=1))
        perm = torch.randperm(N, generator=torch.Generator().manual_seed(3))
        buckets = assign(q)
        torch.testing.assert_close(assign(q[:, :, perm]), buckets[..., perm], rtol=0, atol=0)
        one_by_one = torch.cat([assign(q[:, :, t:t + 1]) for t in range(N)], dim=-1)
        torch.testing.assert_close(one_by_one, buckets, rtol=0, atol=0)
    assert len(torch.unique(buckets)) > 1


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
@pytest.mark.parametrize("impl", ["masked", "fast"])
def test_prefill_then_step_equals_forward(variant, impl):
    name, overrides = variant
    module = build(name, impl=fast_impl(name) if impl == "fast" else "masked", **overrides)
    x = inputs()
    split = N - 7
    with torch.no_grad():
        full = module(x)
        y, state = module.prefill(x[:, :split])
        outputs = [y]
        for t in range(split, N):
            y_t, state = module.step(x[:, t:t + 1], state)
            outputs.append(y_t)
    torch.testing.assert_close(torch.cat(outputs, dim=1), full, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_counted_flops_match_analytic_off_defaults(variant):
    """The cost models hold off the default sizes too (padding, dilation, rounds, empty parts)."""
    name, overrides = variant
    for impl in get_spec(name).impls:
        config = resolve_config(get_spec(name), {"batch": BATCH, "seq_len": N, "d_model": D_MODEL, "impl": impl, **overrides})
        for mode in ("forward", "train", "decode"):
            module = effprof.build(name, **config)
            workload = make_workload(module, config, mode)
            with FlopCounter() as counter:
                workload.run()
            assert not counter.unknown_ops
            counted = counter.total / workload.per_call
            assert counted == pytest.approx(get_spec(name).cost(config, mode).flops, rel=1e-6), f"{impl} {mode}: {dict(counter.by_op)}"


@pytest.mark.parametrize("name", SPARSE)
def test_fast_flops_linear_masked_quadratic(name):
    """Analytic FLOPs at a fixed budget: doubling n doubles the fast form (±10%) and about quadruples the reference."""
    spec = get_spec(name)

    def flops(impl: str, n: int) -> float:
        return spec.cost(resolve_config(spec, {"impl": impl, "seq_len": n}), "forward").flops

    fast = fast_impl(name)
    if name != "sparse_transformer":  # its summary keys grow with n at a fixed stride (claimed quadratic)
        assert flops(fast, 4096) / flops(fast, 2048) == pytest.approx(2.0, rel=0.1)
    assert flops("masked", 4096) / flops("masked", 2048) > 3.0


@pytest.mark.parametrize("name,constant", [("sliding_window", True), ("longformer", True), ("routing", True),
                                           ("bigbird", False), ("reformer", False), ("block_sparse", False)])
def test_decode_state_bytes(name, constant):
    """Local patterns keep a fixed window of keys; random, dynamic and selected ones keep the cache."""
    module = build(name, n=200, impl=fast_impl(name), window=8) if name in ("sliding_window", "longformer", "routing") else build(name, n=200)
    with torch.no_grad():
        sizes = [state_nbytes(module.prefill(inputs(n=n))[1]) for n in (100, 200)]
    assert (sizes[0] == sizes[1]) == constant, sizes


class FloatTensorWatch(TorchDispatchMode):
    """The largest floating-point tensor created, and whether any has two dims ≥ n."""

    def __init__(self, n: int):
        super().__init__()
        self.n, self.largest, self.square = n, 0, False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor) and t.is_floating_point():
                self.largest = max(self.largest, t.numel())
                self.square |= sum(size >= self.n for size in t.shape) >= 2
        return out


def test_the_watch_sees_a_dense_matrix():
    module = build("sliding_window", n=512, batch=1, impl="masked")
    with FloatTensorWatch(512) as watch, torch.no_grad():
        module(inputs(n=512, batch=1))
    assert watch.square


@pytest.mark.parametrize("name", SPARSE)
def test_pattern_at_4096_without_dense_scores(name):
    n = 4096
    with FloatTensorWatch(n) as watch:
        data = pattern_data(name, seq_len=n)
    assert not watch.square, "an n×n float tensor was allocated"
    assert watch.largest < 2 * n * n  # (batch 1, 2 heads): less than the dense scores
    rows, cols = data["rows"], data["cols"]
    assert data["n"] == n and data["pairs"] == len(rows) > n
    assert (cols <= rows).all() and (np.diff(rows * n + cols) > 0).all()
    assert data["density"] == pytest.approx(len(rows) / (n * (n + 1) / 2))
    assert data["density"] < 0.25


def test_pattern_lists_from_spec():
    spec = get_spec("sliding_window")
    lists = spec.pattern(resolve_config(spec, {"seq_len": 10, "window": 3, "block_size": 4}))
    assert [t.tolist() for t in lists[:4]] == [[0], [0, 1], [0, 1, 2], [1, 2, 3]]


def test_write_pattern_html(tmp_path):
    data = pattern_data("bigbird", seq_len=96, block_size=8, window=16, n_global=8)
    data["name"] = "bigbird <b>"  # whatever reaches the page is escaped
    path = write_pattern_html(data, str(tmp_path / "sub" / "pattern.html"))
    with open(path, encoding="utf-8") as f:
        page = f.read()
    assert "<script src=" not in page and "Plotly.newPlot" in page  # plotly.js inlined, no CDN
    assert "bigbird &lt;b&gt;" in page and "bigbird <b>" not in page
    assert f"{data['pairs']:,} attended" in page


def test_render_never_imports_torch():
    code = "import sys, numpy as np; import effprof.render.patterns as p; " \
           "p.write_pattern_html({'name': 'x', 'n': 3, 'rows': np.array([0, 1, 2]), 'cols': np.array([0, 0, 2]), " \
           "'pairs': 3, 'density': 0.5, 'config': {}}, sys.argv[1]); assert 'torch' not in sys.modules"
    out = subprocess.run([sys.executable, "-c", code, "/tmp/effprof_pattern_check.html"], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr


def test_with_patterns_lists_the_family():
    assert set(SPARSE) <= set(with_patterns())


# The fused sliding window (the default): token-major strided bands, no copies of q, k or v.
FUSED_WINDOWS = [  # (window, dilation, block_size, n, batch): padding, dilation, batch > 1, one part only, window 1
    (5, 1, 4, 37, 2), (4, 3, 3, 37, 3), (16, 2, 4, 100, 2), (8, 1, 4, 6, 2), (1, 1, 4, 9, 2), (3, 1, 8, 40, 1)]


def _prefill_then_steps(module, x: torch.Tensor, split: int) -> torch.Tensor:
    """The outputs of a prefill of x[:, :split] followed by one step per remaining token, as one (b, n, d) tensor."""
    y, state = module.prefill(x[:, :split])
    outputs = [y]
    for t in range(split, x.shape[1]):
        y_t, state = module.step(x[:, t:t + 1], state)
        outputs.append(y_t)
    return torch.cat(outputs, dim=1)


@pytest.mark.parametrize("case", FUSED_WINDOWS, ids=lambda c: "w{}-d{}-B{}-n{}-b{}".format(*c))
def test_fused_window_equals_masked_forward_gradients_and_decode(case):
    w, δ, B, n, batch = case
    config = {"window": w, "dilation": δ, "block_size": B}
    reference = build("sliding_window", n=n, batch=batch, impl="masked", **config).double()
    fused = build("sliding_window", n=n, batch=batch, impl="fused", **config).double()
    fused.load_state_dict(reference.state_dict())
    x = inputs(n=n, batch=batch).double()
    grad = torch.randn(batch, n, D_MODEL, dtype=torch.double, generator=torch.Generator().manual_seed(2))
    results = []
    for module in (reference, fused):
        xx = x.clone().requires_grad_(True)
        y = module(xx)
        y.backward(grad)
        results.append((y.detach(), xx.grad, module.q_proj.weight.grad, module.k_proj.weight.grad, module.v_proj.weight.grad))
    for expected, actual in zip(results[0], results[1], strict=True):
        torch.testing.assert_close(actual, expected, rtol=1e-10, atol=1e-12)
    with torch.no_grad():
        q, k, v = fused.project(x)  # the (b, h, n, d) entry point agrees too
        torch.testing.assert_close(fused.attention(q, k, v), reference.attention(q, k, v), rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(_prefill_then_steps(fused, x, max(1, n - 5)), results[0][0], rtol=1e-10, atol=1e-12)


class LargeStorages(TorchDispatchMode):
    """Distinct new storages of at least `nbytes`, and the ops that made them. Each is held until the watch ends, so the
    allocator cannot hand a freed one's address to the next and two storages never share a key."""

    def __init__(self, nbytes: int):
        super().__init__()
        self.nbytes, self.made, self.held = nbytes, {}, []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor) and t.untyped_storage().nbytes() >= self.nbytes:
                self.made.setdefault(t.untyped_storage().data_ptr(), str(func.overloadpacket.__name__))
                self.held.append(t)
        return out


@pytest.mark.parametrize("batch", [1, 2])
def test_fused_window_copies_no_query_key_or_value(batch):
    """Full-size tensors of the fused forward: the four projections, the attention's output and the buffer it is
    written to (plus, at batch > 1, x and y in token-major order); no scaled, folded or padded copy of q, k or v."""
    n, w, B = 256, 16, 8  # a multiple of B: no padding
    module = build("sliding_window", n=n, batch=batch, impl="fused", window=w, block_size=B)
    x = inputs(n=n, batch=batch)
    with LargeStorages(batch * n * D_MODEL * 4) as watch, torch.no_grad():
        module(x)
    ops = sorted(watch.made.values())
    assert len(ops) == 6 + 2 * (batch > 1) and ops.count("mm") == 4, ops
    with LargeStorages(batch * n * D_MODEL * 4) as watch, torch.no_grad():  # the watch sees copies: the gathered form makes many
        build("sliding_window", n=n, batch=batch, impl="blocked", window=w, block_size=B)(x)
    assert len(watch.made) > 8, sorted(watch.made.values())


FUSED_PLANS = [variant for variant in VARIANTS if variant[0] in ("longformer", "bigbird")]


@pytest.mark.parametrize("variant", FUSED_PLANS, ids=variant_id)
@pytest.mark.parametrize("n,batch", [(N, BATCH), (5, 1), (64, 3)])
def test_fused_plan_equals_masked_forward_gradients_and_decode(variant, n, batch):
    """Longformer's and BigBird's fused form (one gather, one fused-kernel call, the plan's −∞ bias) is their
    masked reference: outputs, input and weight gradients, and prefill then steps."""
    name, overrides = variant
    reference = build(name, n=n, batch=batch, impl="masked", **overrides).double()
    fused = build(name, n=n, batch=batch, impl="fused", **overrides).double()
    fused.load_state_dict(reference.state_dict())
    x = inputs(n=n, batch=batch).double()
    results = []
    for module in (reference, fused):
        xx = x.clone().requires_grad_(True)
        y = module(xx)
        y.backward(torch.cos(y.detach()))
        results.append((y.detach(), xx.grad, module.q_proj.weight.grad, module.k_proj.weight.grad, module.v_proj.weight.grad))
    for expected, actual in zip(results[0], results[1], strict=True):
        torch.testing.assert_close(actual, expected, rtol=1e-10, atol=1e-12)
    with torch.no_grad():
        torch.testing.assert_close(_prefill_then_steps(fused, x, max(1, n - 4)), results[0][0], rtol=1e-10, atol=1e-12)
    assert get_spec(name).defaults["impl"] == "fused"
