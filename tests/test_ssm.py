"""The ssm family (s4, mamba, mamba2): each form against the others and against independent evaluations."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import effprof
from effprof import kernels
from effprof.config import ConfigError, resolve_config
from effprof.measure.flops import FlopCounter
from effprof.measure.memory import LiveTensorTracker
from effprof.measure.workload import make_workload
from effprof.mechanisms.base import state_nbytes
from effprof.mechanisms.ssm.hippo import conjugate_half, legs_dplr, legs_matrices
from effprof.mechanisms.ssm.mamba_cost import selective_scan_backward_flops, selective_scan_flops
from effprof.mechanisms.ssm.s4_kernel import DPLR, Diagonal
from effprof.mechanisms.ssm.selective_scan import (
    KernelUnsupported,
    chunked_scan,
    compiled_selective_scan,
    selective_scan,
    sequential_scan,
    state_max,
)
from effprof.mechanisms.ssm.ssd import chunked_ssd, quadratic_ssd, recurrent_ssd, segsum
from effprof.registry import get_spec

S4_VARIANTS = [("diag", "zoh"), ("diag", "bilinear"), ("dplr", "bilinear")]


def _x(b: int, n: int, d: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(b, n, d, generator=torch.Generator().manual_seed(seed))


def _same_weights(name: str, impls: tuple[str, ...], **config) -> dict[str, torch.nn.Module]:
    modules = {impl: effprof.build(name, impl=impl, **config).eval() for impl in impls}
    first = modules[impls[0]]
    for module in modules.values():
        module.load_state_dict(first.state_dict())
    return modules


def _assert_forms_agree(name: str, impls: tuple[str, ...], n: int, **config) -> None:
    """Outputs and prefill states of every impl equal the first's; decoding on from each state agrees too."""
    modules = _same_weights(name, impls, batch=2, seq_len=n, d_model=16, **config)
    x, x_next = _x(2, n, 16), _x(2, 3, 16, seed=2)
    with torch.no_grad():
        results = {impl: m.prefill(x) for impl, m in modules.items()}
        y0, state0 = results[impls[0]]
        for impl, (y, state) in results.items():
            torch.testing.assert_close(y, y0, rtol=1e-4, atol=1e-5, msg=lambda m, impl=impl: f"{impl} output: {m}")
            torch.testing.assert_close(modules[impl](x), y0, rtol=1e-4, atol=1e-5)
            for a, b in zip(torch.utils._pytree.tree_leaves(state), torch.utils._pytree.tree_leaves(state0), strict=False):
                torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=lambda m, impl=impl: f"{impl} state: {m}")
            s_ref, s = state0, state
            for i in range(3):
                y_ref, s_ref = modules[impls[0]].step(x_next[:, i : i + 1], s_ref)
                y_t, s = modules[impl].step(x_next[:, i : i + 1], s)
                torch.testing.assert_close(y_t, y_ref, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- HiPPO and S4


def test_hippo_legs_closed_form():
    """N = 3 by hand: A_nk = -√(2n+1)√(2k+1) below the diagonal, -(n+1) on it; B_n = √(2n+1)."""
    A, B = legs_matrices(3)
    s3, s5, s15 = math.sqrt(3), math.sqrt(5), math.sqrt(15)
    expected = torch.tensor([[-1.0, 0.0, 0.0], [-s3, -2.0, 0.0], [-s5, -s15, -3.0]], dtype=torch.float64)
    torch.testing.assert_close(A, expected)
    torch.testing.assert_close(B, torch.tensor([1.0, s3, s5], dtype=torch.float64))


@pytest.mark.parametrize("N", [4, 7])
def test_hippo_dplr_reconstructs_legs(N):
    """V (diag(Λ) - P̃P̃*) V* = A with V unitary and Re Λ = -½; V B̃ = B."""
    A, B = legs_matrices(N)
    Lambda, P, Bt, V = legs_dplr(N)
    torch.testing.assert_close(V @ V.conj().T, torch.eye(N, dtype=V.dtype), atol=1e-12, rtol=0)
    rebuilt = V @ (torch.diag(Lambda) - P[:, None] * P.conj()[None, :]) @ V.conj().T
    torch.testing.assert_close(rebuilt, A.to(rebuilt.dtype), atol=1e-10, rtol=0)
    torch.testing.assert_close(V @ Bt, B.to(Bt.dtype), atol=1e-12, rtol=0)
    torch.testing.assert_close(Lambda.real, torch.full((N,), -0.5, dtype=torch.float64))


def _s4_system(H: int = 3, N: int = 6, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    Lambda, P, B, _ = legs_dplr(N)
    Lambda, P, B = (t.to(torch.complex64).repeat(H, 1) for t in (Lambda, P, B))
    C = torch.randn(H, N, dtype=torch.complex64, generator=g)
    dt = torch.exp(torch.empty(H).uniform_(math.log(1e-2), math.log(1e-1), generator=g))
    return Lambda, P, B, C, dt


@pytest.mark.parametrize("discretization", ["zoh", "bilinear"])
def test_s4d_conjugate_pairs_equal_all_modes(discretization):
    """The paper's S4D keeps one mode of each conjugate pair and takes 2·Re: the same kernel, outputs and
    readouts as all N modes with the partners' values the conjugates (what a real system has)."""
    H, N, L = 3, 8, 20
    g = torch.Generator().manual_seed(4)
    Lambda, B = (t.to(torch.complex64).repeat(H, 1) for t in conjugate_half(*legs_dplr(N)[0:3:2]))
    C = torch.randn(H, N // 2, dtype=torch.complex64, generator=g)
    dt = torch.exp(torch.empty(H).uniform_(math.log(1e-2), math.log(1e-1), generator=g))
    half = Diagonal(Lambda, B, C, dt, discretization, pairs=True)
    full = Diagonal(*(torch.cat([t, t.conj()], dim=1) for t in (Lambda, B, C)), dt, discretization)
    torch.testing.assert_close(half.kernel(L), full.kernel(L), rtol=1e-4, atol=1e-5)
    u = torch.randn(2, H, L, generator=g)
    x_half, x_full = half.final_state(u), full.final_state(u)
    torch.testing.assert_close(half.readout(x_half), full.readout(x_full), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(torch.cat([x_half, x_half.conj()], dim=-1), x_full, rtol=1e-4, atol=1e-5)
    step_half, step_full = half.step(x_half, u[..., 0]), full.step(x_full, u[..., 0])
    torch.testing.assert_close(half.readout(step_half), full.readout(step_full), rtol=1e-4, atol=1e-5)


def test_s4d_state_is_half_the_modes():
    """d_state = N: S4D's decode state is N/2 complex64 numbers per channel (all N before), counted = analytic."""
    config = {"batch": 2, "seq_len": 16, "d_model": 8, "d_state": 16}
    module = effprof.build("s4", **config)
    with torch.no_grad():
        _, state = module.prefill(torch.randn(2, 16, 8))
    assert state_nbytes(state) == 2 * 8 * (16 // 2) * 8
    assert get_spec("s4").cost(resolve_config(get_spec("s4"), config), "decode").state_bytes == state_nbytes(state)
    dplr = effprof.build("s4", param="dplr", **config)
    with torch.no_grad():
        assert state_nbytes(dplr.prefill(torch.randn(2, 16, 8))[1]) == 2 * 8 * 16 * 8  # DPLR keeps all N
    with pytest.raises(ConfigError, match="d_state=7 is odd"):
        effprof.build("s4", d_state=7)
    with pytest.raises(ValueError, match="N must be even"):
        conjugate_half(*legs_dplr(7)[:1])


def _kernel_by_powers(Abar: torch.Tensor, Bbar: torch.Tensor, C: torch.Tensor, L: int) -> torch.Tensor:
    """K_l = Re(C Ā^l B̄) by repeated multiplication; Ā: (H, N, N) dense."""
    x, out = Bbar[..., None], []
    for _ in range(L):
        out.append((C[:, None, :] @ x)[:, 0, 0].real)
        x = Abar @ x
    return torch.stack(out, dim=-1)


@pytest.mark.parametrize("discretization", ["zoh", "bilinear"])
def test_s4d_vandermonde_kernel_equals_repeated_multiplication(discretization):
    Lambda, _, B, C, dt = _s4_system()
    ssm = Diagonal(Lambda, B, C, dt, discretization)
    L = 23  # not a square: the two-level Vandermonde is truncated
    expected = _kernel_by_powers(torch.diag_embed(ssm.Abar), ssm.Bbar, C, L)
    torch.testing.assert_close(ssm.kernel(L), expected, rtol=1e-4, atol=1e-5)


def test_s4_dplr_kernel_equals_repeated_multiplication():
    """The Cauchy/Woodbury kernel at the roots of unity equals C Ā^l B̄ with Ā, B̄ from dense solves."""
    Lambda, P, B, C, dt = _s4_system()
    N = Lambda.shape[-1]
    A = torch.diag_embed(Lambda) - P[:, :, None] * P.conj()[:, None, :]
    eye = torch.eye(N, dtype=A.dtype)
    left = eye - (dt[:, None, None] / 2) * A
    Abar = torch.linalg.solve(left, eye + (dt[:, None, None] / 2) * A)  # independent of the Woodbury form
    Bbar = torch.linalg.solve(left, (dt[:, None] * B)[..., None])[..., 0]
    L = 20
    torch.testing.assert_close(DPLR(Lambda, P, B, C, dt).kernel(L), _kernel_by_powers(Abar, Bbar, C, L), rtol=1e-4, atol=1e-5)


def test_s4_zoh_matches_van_loan():
    """ZOH's B̄ = (ΔA)⁻¹(exp(ΔA) - I)ΔB equals the top-right block of exp([[ΔA, ΔB], [0, 0]])."""
    Lambda, _, B, C, dt = _s4_system(H=2, N=4)
    ssm = Diagonal(Lambda, B, C, dt, "zoh")
    N = Lambda.shape[-1]
    for h in range(2):
        block = torch.zeros(N + 1, N + 1, dtype=torch.complex128)
        block[:N, :N] = torch.diag(dt[h] * Lambda[h]).to(torch.complex128)
        block[:N, N] = (dt[h] * B[h]).to(torch.complex128)
        exp_block = torch.linalg.matrix_exp(block)
        torch.testing.assert_close(ssm.Abar[h], torch.diagonal(exp_block[:N, :N]).to(torch.complex64), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(ssm.Bbar[h], exp_block[:N, N].to(torch.complex64), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("param,discretization", S4_VARIANTS)
@pytest.mark.parametrize("n", [1, 17, 40])
def test_s4_forms_agree(param, discretization, n):
    """recurrent = fft for each parameterisation and discretisation: outputs, prefill states, decode."""
    _assert_forms_agree("s4", ("recurrent", "fft"), n, d_state=8, param=param, discretization=discretization)


def test_s4_dplr_requires_bilinear():
    with pytest.raises(ConfigError, match="bilinear"):
        effprof.build("s4", param="dplr", discretization="zoh")


# ----------------------------------------------------------------------------- Mamba


def _plain_loop_scan(x, delta, A, B, C):
    """The paper's equations with a loop over every index: h[d,s] ← exp(Δ[t,d] A[d,s]) h[d,s] + Δ[t,d] B[t,s] x[t,d]."""
    b, n, D = x.shape
    N = A.shape[1]
    y = torch.zeros(b, n, D, dtype=torch.float64)
    for i in range(b):
        h = [[0.0] * N for _ in range(D)]
        for t in range(n):
            for d in range(D):
                acc = 0.0
                for s in range(N):
                    decay = math.exp(float(delta[i, t, d] * A[d, s]))
                    h[d][s] = decay * h[d][s] + float(delta[i, t, d] * B[i, t, s] * x[i, t, d])
                    acc += h[d][s] * float(C[i, t, s])
                y[i, t, d] = acc
    return y


def _scan_inputs(b=2, n=9, D=4, N=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, n, D, generator=g)
    delta = F.softplus(torch.randn(b, n, D, generator=g))
    A = -torch.exp(torch.randn(D, N, generator=g))
    B, C = torch.randn(b, n, N, generator=g), torch.randn(b, n, N, generator=g)
    return x, delta, A, B, C


def test_mamba_sequential_scan_matches_plain_loop():
    x, delta, A, B, C = _scan_inputs()
    y, _ = sequential_scan(x, delta, A, B, C, torch.zeros(2, 4, 3))
    torch.testing.assert_close(y.double(), _plain_loop_scan(x, delta, A, B, C), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("chunk_size", [1, 2, 4, 9, 16])
def test_mamba_chunked_scan_matches_sequential(chunk_size):
    """Every lane layout (one token per lane, ragged last lane, one lane) gives the same y and h_n."""
    x, delta, A, B, C = _scan_inputs()
    y_ref, h_ref = sequential_scan(x, delta, A, B, C, torch.zeros(2, 4, 3))
    y, h = chunked_scan(x, delta, A, B, C, chunk_size)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(h, h_ref, rtol=1e-5, atol=1e-6)


def test_mamba_chunked_scan_is_stable_with_large_decays():
    """Δ·|A| far beyond fp32's exp range over a lane: still finite and equal to the loop."""
    x, delta, A, B, C = _scan_inputs(n=40, seed=3)
    delta = delta * 30
    y_ref, _ = sequential_scan(x, delta, A, B, C, torch.zeros(2, 4, 3))
    y, _ = chunked_scan(x, delta, A, B, C, 16)
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)


@pytest.fixture
def compiled():
    """The compiled selective scan: built wherever a C compiler is (CI has one); a failed build fails the test."""
    if os.environ.get("CC") is None and shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler: the torch form runs everywhere")
    if os.environ.get("EFFPROF_KERNELS") == "0":
        pytest.skip("compiled kernels disabled by EFFPROF_KERNELS=0")
    assert kernels.load("selective_scan") is not None, kernels.status("selective_scan")


def _wide_scan_inputs(b: int, n: int, d: int, N: int, seed: int = 5):
    """x, Δ, A, B, C, D and z (a strided view, as the in-projection's second half is)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, n, d, generator=g)
    delta = F.softplus(torch.randn(b, n, d, generator=g) - 1)
    A = -torch.rand(d, N, generator=g) * 8 - 0.1
    z = torch.randn(b, n, 2 * d, generator=g)[..., d:]
    return x, delta, A, torch.randn(b, n, N, generator=g), torch.randn(b, n, N, generator=g), torch.randn(d, generator=g), z


def _torch_form(x, delta, A, B, C, D, z, size):
    y, h = chunked_scan(x, delta, A, B, C, size)
    return (y + x * D) * F.silu(z), h


# channel counts off the kernel's block of 32, odd d_state, ragged and single lanes, one token per lane; the last
# two run the one-pass form (b·D_in ≥ 256), one with a ragged last block of channels
WIDE = [(1, 50, 256, 4, 8), (2, 70, 130, 16, 16)]
@pytest.mark.parametrize("b,n,d,N,size", [(2, 100, 40, 7, 16), (1, 64, 32, 16, 64), (3, 37, 5, 3, 200), (1, 9, 70, 1, 1), (2, 130, 33, 16, 7), *WIDE])
def test_compiled_scan_equals_torch_form(compiled, b, n, d, N, size):
    args = _wide_scan_inputs(b, n, d, N)
    with torch.no_grad():
        out, h, entering, _ = compiled_selective_scan(*args, size)
        out_ref, h_ref = _torch_form(*args, size)
        out_seq, h_seq = selective_scan(*args, "sequential", size)
    torch.testing.assert_close(out, out_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(h, h_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out, out_seq, rtol=1e-4, atol=1e-5)
    assert entering.shape == (b, math.ceil(n / min(size, n)), N, d)


def test_compiled_scan_is_stable_with_large_decays(compiled):
    """Δ·|A| far beyond fp32's exp range (e^-87 and below): finite, and equal to the token loop."""
    x, delta, A, B, C, D, z = _wide_scan_inputs(2, 90, 40, 5)
    with torch.no_grad():
        out, h, _, _ = compiled_selective_scan(x, delta * 30, A, B, C, D, z, 16)
        out_seq, h_seq = selective_scan(x, delta * 30, A, B, C, D, z, "sequential", 16)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, out_seq, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(h, h_seq, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("d,lane", [(40, 8), (256, 45)])  # lanes of 8; one pass (b·D_in ≥ 256): one lane of n
def test_compiled_scan_counts_the_torch_forms_flops(compiled, d, lane):
    """The kernel's registered formula is the count of the torch form it mirrors (with the lanes it runs: one of
    n tokens in its one-pass form), measured by the counter."""
    args = _wide_scan_inputs(2, 45, d, 7)
    with torch.no_grad(), FlopCounter() as torch_form:
        _torch_form(*args, lane)
    with torch.no_grad(), FlopCounter() as kernel:
        selective_scan(*args, "chunked_c", 8)
    assert torch_form.total == selective_scan_flops(2, 45, d, 7, 8) == kernel.total
    assert dict(kernel.custom_ops) == {"effprof::selective_scan": 1}
    assert not kernel.unknown_ops and not torch_form.custom_ops


def test_compiled_scan_scratch_is_seen_by_memory_accounting(compiled):
    args = _wide_scan_inputs(1, 256, 64, 16)
    with torch.no_grad(), LiveTensorTracker() as tracker:
        result = compiled_selective_scan(*args, 16)
    assert tracker.peak >= sum(t.numel() * t.element_size() for t in result)
    assert result[2].numel() == 16 * 16 * 64  # H_k of 16 lanes


def test_chunked_never_runs_the_kernel(compiled):
    """Each impl is one piece of code: chunked is the torch form even where the kernel could run, in every mode."""
    x, delta, A, B, C, D, z = _wide_scan_inputs(1, 20, 8, 4)
    D.requires_grad_(True)
    with FlopCounter() as counter:
        selective_scan(x, delta, A, B, C, D, z, "chunked", 4)[0].sum().backward()
    assert not counter.custom_ops


# ragged and single lanes, channels off the block of 32, one token per lane, a lane longer than the sequence, and
# the one-pass forward (its chunk states feed the backward)
@pytest.mark.parametrize("b,n,d,N,size", [(2, 100, 40, 7, 16), (1, 64, 32, 16, 64), (3, 37, 5, 3, 200), (1, 9, 70, 1, 1), (2, 130, 33, 16, 7), *WIDE])
def test_compiled_backward_equals_autograd_of_the_torch_form(compiled, b, n, d, N, size):
    """The kernel's gradients of x, Δ, A, B, C, D and z, from weighted output AND final-state gradients, equal
    autograd through the torch form run in float64 (the kernel's float32 to 1e-5 relative)."""
    args = _wide_scan_inputs(b, n, d, N)
    g = torch.Generator().manual_seed(9)
    w_out, w_last = torch.randn(b, n, d, generator=g, dtype=torch.float64), torch.randn(b, d, N, generator=g, dtype=torch.float64)
    exact = [t.double().requires_grad_(True) for t in args]
    y, h = chunked_scan(*exact[:5], size)
    (((y + exact[0] * exact[5]) * F.silu(exact[6]) * w_out).sum() + (h * w_last).sum()).backward()
    fast = [t.detach().requires_grad_(True) for t in args]
    with FlopCounter() as counter:
        out, last, _, _ = compiled_selective_scan(*fast, size)
        ((out * w_out.float()).sum() + (last * w_last.float()).sum()).backward()
    assert dict(counter.custom_ops) == {"effprof::selective_scan": 1, "effprof::selective_scan_backward": 1}
    for name, want, got in zip(("x", "Δ", "A", "B", "C", "D", "z"), exact, fast, strict=True):
        scale = want.grad.abs().max().item()
        error = (got.grad.double() - want.grad).abs().max().item() / scale
        assert error < 1e-5, f"∂{name}: relative error {error:.2e}"


def test_compiled_backward_is_finite_with_large_decays(compiled):
    """Δ·|A| far below fp32's exp range: the kernel's gradients stay finite and equal the float64 torch form's."""
    x, delta, A, B, C, D, z = _wide_scan_inputs(1, 60, 36, 5)
    delta = delta * 30
    exact = [t.double().requires_grad_(True) for t in (x, delta, A, B, C, D, z)]
    y, _ = chunked_scan(*exact[:5], 16)
    ((y + exact[0] * exact[5]) * F.silu(exact[6])).sum().backward()
    fast = [t.detach().requires_grad_(True) for t in (x, delta, A, B, C, D, z)]
    compiled_selective_scan(*fast, 16)[0].sum().backward()
    for want, got in zip(exact, fast, strict=True):
        assert torch.isfinite(got.grad).all()
        torch.testing.assert_close(got.grad.double(), want.grad, rtol=1e-4, atol=1e-4 * want.grad.abs().max().item())


def test_compiled_backward_counts_its_registered_formula(compiled):
    """The backward op is counted by the formula registered for it (selective_scan_backward_flops), and a
    mamba train point's counted FLOPs equal the cost model with the kernel in both directions."""
    args = [t.detach().requires_grad_(True) for t in _wide_scan_inputs(2, 45, 40, 7)]
    out = selective_scan(*args, "chunked_c", 8)[0]
    with FlopCounter() as counter:
        out.sum().backward()
    assert counter.by_op["effprof::selective_scan_backward"] == selective_scan_backward_flops(2, 45, 40, 7, 8) > 0
    from effprof.measure.harness import Options, measure_point

    record = measure_point("mamba", "train", {"impl": "chunked_c", "seq_len": 40, "d_model": 16, "chunk_size": 8},
                           Options(timing=False, fvcore=False, memory=False, roofline=False))
    assert record["status"] == "ok", record["error"]
    assert record["custom_ops"] == "effprof::selective_scan,effprof::selective_scan_backward"
    assert record["flops_counted"] == record["flops_analytic"]


def test_kernel_boundary_checks_dtype_and_shape_and_copies_strided_inputs(compiled):
    x, delta, A, B, C, D, z = _wide_scan_inputs(2, 30, 12, 5)
    with torch.no_grad():
        with pytest.raises(KernelUnsupported, match="float32; delta is torch.float64"):
            compiled_selective_scan(x, delta.double(), A, B, C, D, z, 8)
        with pytest.raises(ValueError, match=r"B has shape \(2, 30, 4\), expected \(2, 30, 5\)"):
            compiled_selective_scan(x, delta, A, B[..., :4], C, D, z, 8)
        big = torch.zeros(12, state_max() + 1)
        with pytest.raises(KernelUnsupported, match=f"d_state up to {state_max()}"):
            compiled_selective_scan(x, delta, big, torch.zeros(2, 30, state_max() + 1), torch.zeros(2, 30, state_max() + 1), D, z, 8)
        # transposed storage and a z whose channels are not adjacent: copied, same answer as contiguous inputs
        strided = [t.transpose(0, 1).contiguous().transpose(0, 1) for t in (x, delta, B, C)]
        z_strided = torch.randn(2, 12, 30).transpose(1, 2)
        assert not z_strided.is_contiguous() and not strided[0].is_contiguous()
        out, h, _, _ = compiled_selective_scan(strided[0], strided[1], A, strided[2], strided[3], D, z_strided, 8)
        expected, h_expected = _torch_form(x, delta, A, B, C, D, z_strided.contiguous(), 8)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(h, h_expected, rtol=1e-5, atol=1e-5)


def test_state_max_is_the_kernels_own(compiled):
    """STATE_MAX is defined once, in selective_scan.c; the config check uses the value read from the library."""
    source = (Path(kernels.__file__).parent / "selective_scan.c").read_text()
    assert f"#define STATE_MAX {state_max()} " in source
    with pytest.raises(ConfigError, match=f"d_state={state_max() + 1} is above impl=chunked_c's {state_max()}"):
        resolve_config(get_spec("mamba"), {"impl": "chunked_c", "d_state": state_max() + 1})
    resolve_config(get_spec("mamba"), {"impl": "chunked", "d_state": state_max() + 1})  # the torch form has no limit


@pytest.mark.parametrize("key,value", [("device", "cuda"), ("dtype", "bfloat16"), ("dtype", "float16")])
def test_chunked_c_refuses_other_devices_and_dtypes_in_config(key, value):
    """The spec's own check (resolve_config runs it after its device check, which CPU-only machines fail first)."""
    spec = get_spec("mamba")
    config = {**resolve_config(spec, {"impl": "chunked"}), key: value}
    with pytest.raises(ConfigError, match=f"impl=chunked_c runs on CPU in float32, not .*{value}"):
        spec.validate({**config, "impl": "chunked_c"})
    spec.validate(config)


def test_the_default_impl_runs_everywhere_and_starting_effprof_compiles_nothing(tmp_path):
    """mamba's default, impl=auto, trains and runs in bf16 (as the torch form, saying why); loading the registry,
    as `effprof list` does, compiles no kernel (an empty kernel cache stays empty)."""
    import subprocess
    import sys

    assert get_spec("mamba").defaults["impl"] == "auto"
    module = effprof.build("mamba", seq_len=8, d_model=16, dtype="bfloat16")
    with FlopCounter() as counter:
        module(torch.randn(1, 8, 16, dtype=torch.bfloat16, requires_grad=True)).sum().backward()
    assert not counter.custom_ops
    code = "from effprof.registry import list_mechanisms; list_mechanisms()"
    env = {**os.environ, "EFFPROF_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.so"))



def _quick_point(mode: str, **config):
    from effprof.measure.harness import Options, measure_point

    return measure_point("mamba", mode, {"seq_len": 24, "d_model": 16, "chunk_size": 8, **config},
                         Options(timing=False, fvcore=False, memory=False, roofline=False))


@pytest.mark.parametrize("mode", ["forward", "train", "decode"])
def test_auto_runs_the_compiled_scan_on_cpu_float32_and_the_record_says_so(compiled, mode):
    """impl=auto is the kernel, forward and backward, where it runs; the record keeps impl=auto as asked and
    names the form that ran; its counted FLOPs are that form's cost model."""
    record = _quick_point(mode)
    assert record["status"] == "ok", record["error"]
    assert (record["impl"], record["impl_resolved"]) == ("auto", "chunked_c")
    assert "compiled scan" in record["impl_reason"]
    # decode counts its per-token steps: the one-token recurrence, the same in every form (the prefill is not counted)
    kernels_ran = {"forward": "effprof::selective_scan", "train": "effprof::selective_scan,effprof::selective_scan_backward"}
    assert record.get("custom_ops") == kernels_ran.get(mode)
    assert record["flops_counted"] == pytest.approx(record["flops_analytic"], rel=1e-9)
    assert ["flops", "seq_len", 1.0, 0.0] in record["claims"] or mode == "decode"


@pytest.mark.parametrize("config,why", [
    ({"dtype": "bfloat16"}, "chunked_c runs in float32 only, not bfloat16"),
    ({"d_state": 10_000}, "chunked_c takes d_state up to 256, not 10000"),
])
def test_auto_falls_back_to_the_torch_form_and_says_why(compiled, config, why):
    """Where the kernel cannot run, auto runs chunked (no kernel in custom_ops) and impl_reason names the cause."""
    from effprof.mechanisms.ssm.mamba import resolve_impl

    assert resolve_impl({**resolve_config(get_spec("mamba"), {}), **config}) == ("chunked", why)
    record = _quick_point("train", seq_len=12, **config)
    assert record["status"] == "ok", record["error"]
    assert (record["impl"], record["impl_resolved"], record["impl_reason"]) == ("auto", "chunked", why)
    assert "custom_ops" not in record
    assert resolve_impl({**resolve_config(get_spec("mamba"), {}), "device": "cuda"}) == ("chunked", "chunked_c runs on CPU only, not cuda")


def test_a_named_impl_is_never_resolved(compiled):
    """impl=chunked is the torch form even where the kernel runs: impl_resolved = impl, no reason, no kernel."""
    record = _quick_point("forward", impl="chunked")
    assert (record["impl"], record["impl_resolved"], "impl_reason" in record, "custom_ops" in record) == ("chunked", "chunked", False, False)


def test_auto_without_a_kernel_runs_the_torch_form(monkeypatch):
    monkeypatch.setenv("EFFPROF_KERNELS", "0")
    kernels.load.cache_clear()
    try:
        record = _quick_point("forward")
    finally:
        monkeypatch.delenv("EFFPROF_KERNELS")
        kernels.load.cache_clear()
    assert record["status"] == "ok"
    assert (record["impl_resolved"], record["impl_reason"]) == ("chunked", "chunked_c is not built here: disabled by EFFPROF_KERNELS=0")
    assert "custom_ops" not in record


def test_a_spec_offering_auto_must_say_how_it_resolves():
    from effprof.registry import MechanismSpec, Paper, add, resolve_impl

    spec = MechanismSpec("auto_without_rule", "ssm", "", Paper("t", 2020, "0"), True, {"impl": "auto"}, cost=None,
                         choices={"impl": ("auto", "slow")}, builder=lambda config: None)
    with pytest.raises(ValueError, match="accepts impl=auto but has no resolve_impl"):
        add(spec)
    assert resolve_impl(get_spec("mamba"), {"impl": "sequential"}) == ("sequential", "")


def test_kernels_can_be_switched_off(monkeypatch):
    monkeypatch.setenv("EFFPROF_KERNELS", "0")
    kernels.load.cache_clear()
    try:
        assert kernels.load("selective_scan") is None
        assert kernels.status("selective_scan") == "disabled by EFFPROF_KERNELS=0"
        with torch.no_grad(), pytest.raises(KernelUnsupported, match="disabled by EFFPROF_KERNELS=0"):
            selective_scan(*_wide_scan_inputs(1, 20, 8, 4), "chunked_c", 4)
        with pytest.raises(KernelUnsupported, match="needs the compiled kernel"):
            effprof.build("mamba", impl="chunked_c")
    finally:
        kernels.load.cache_clear()


def test_mamba_block_matches_paper_equations():
    """The whole block from its own weights, written out: in_proj, causal conv, SiLU, Δ, scan, D, gate, out_proj."""
    m = effprof.build("mamba", impl="sequential", batch=1, seq_len=7, d_model=8, d_state=3, d_conv=3).eval()
    u = _x(1, 7, 8)
    with torch.no_grad():
        xz = u @ m.in_proj.weight.T
        x, z = xz[..., :16], xz[..., 16:]
        w, bias = m.conv.conv.weight[:, 0], m.conv.conv.bias  # (16, 3), (16,)
        conv = torch.stack(
            [sum(w[:, j] * x[0, t - 2 + j] for j in range(3) if t - 2 + j >= 0) + bias for t in range(7)]
        )[None]
        xc = conv * torch.sigmoid(conv)
        proj = xc @ m.x_proj.weight.T
        delta = F.softplus(proj[..., :1] @ m.dt_proj.weight.T + m.dt_proj.bias)
        B, C = proj[..., 1:4], proj[..., 4:7]
        y = _plain_loop_scan(xc, delta, -torch.exp(m.A_log), B, C).float() + xc * m.D
        expected = (y * z * torch.sigmoid(z)) @ m.out_proj.weight.T
        torch.testing.assert_close(m(u), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("n,chunk_size", [(1, 4), (12, 4), (13, 4), (30, 64)])
def test_mamba_forms_agree(n, chunk_size):
    _assert_forms_agree("mamba", ("sequential", "chunked"), n, d_state=4, chunk_size=chunk_size)


# ----------------------------------------------------------------------------- Mamba-2 (SSD)


def test_segsum_is_sum_of_the_segment():
    a = torch.randn(2, 6, generator=torch.Generator().manual_seed(0))
    s = segsum(a)
    for t in range(6):
        for r in range(6):
            expected = a[:, r + 1 : t + 1].sum(-1) if r <= t else torch.full((2,), float("-inf"))
            torch.testing.assert_close(s[:, t, r], expected)


def _ssd_inputs(b=2, H=3, n=11, P=4, N=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(b, H, n, P, generator=g)
    a = -F.softplus(torch.randn(b, H, n, generator=g))
    B, C = torch.randn(b, n, N, generator=g), torch.randn(b, n, N, generator=g)
    return X, a, B, C


def test_ssd_quadratic_is_the_masked_dual_form():
    """Y_t = Σ_{s≤t} Π_{k=s+1..t} exp(a_k) (C_t·B_s) X_s, with the products taken one by one."""
    X, a, B, C = _ssd_inputs(b=1, H=2, n=6)
    expected = torch.zeros_like(X)
    for h in range(2):
        for t in range(6):
            for s in range(t + 1):
                decay = torch.prod(torch.exp(a[0, h, s + 1 : t + 1]))
                expected[0, h, t] += decay * (C[0, t] @ B[0, s]) * X[0, h, s]
    torch.testing.assert_close(quadratic_ssd(X, a, B, C), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("chunk_size", [1, 3, 4, 11, 32])
def test_ssd_forms_agree(chunk_size):
    X, a, B, C = _ssd_inputs()
    y_ref, h_ref = recurrent_ssd(X, a, B, C, torch.zeros(2, 3, 4, 5))
    torch.testing.assert_close(quadratic_ssd(X, a, B, C), y_ref, rtol=1e-5, atol=1e-5)
    y, h = chunked_ssd(X, a, B, C, chunk_size)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(h, h_ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("n,chunk_size", [(1, 4), (12, 4), (13, 4), (30, 64)])
def test_mamba2_forms_agree(n, chunk_size):
    _assert_forms_agree("mamba2", ("recurrent", "quadratic", "chunked"), n, d_state=4, n_heads=2, chunk_size=chunk_size)


def test_mamba2_rejects_heads_not_dividing_width():
    with pytest.raises(ConfigError, match="n_heads"):
        effprof.build("mamba2", d_model=10, expand=1, n_heads=3)


# ----------------------------------------------------------------------------- cost models and state


COST_CASES = [
    ("s4", {"impl": impl, "param": p, "discretization": disc, "seq_len": 19, "d_state": 6})
    for impl in ("recurrent", "fft")
    for p, disc in S4_VARIANTS
] + [
    ("mamba", {"impl": "chunked", "seq_len": 19, "chunk_size": 4}),
    ("mamba", {"impl": "chunked", "seq_len": 3, "chunk_size": 8}),
    ("mamba2", {"impl": "chunked", "seq_len": 19, "chunk_size": 4}),
    ("mamba2", {"impl": "chunked", "seq_len": 3, "chunk_size": 8}),
]


@pytest.mark.parametrize("name,overrides", COST_CASES, ids=lambda v: v if isinstance(v, str) else "-".join(map(str, v.values())))
@pytest.mark.parametrize("mode", ["forward", "train", "decode"])
def test_cost_model_matches_counter_off_defaults(name, overrides, mode):
    """The generic test checks the default config; these are the other parameterisations and ragged chunks."""
    config = {"batch": 2, "d_model": 16, **overrides}
    spec = get_spec(name)
    resolved = resolve_config(spec, config)
    workload = make_workload(effprof.build(name, **config), resolved, mode)
    with FlopCounter() as counter:
        workload.run()
    assert not counter.unknown_ops
    assert counter.total / workload.per_call == pytest.approx(spec.cost(resolved, mode).flops, rel=1e-6)  # exact op counts


@pytest.mark.parametrize("name", ["s4", "mamba", "mamba2"])
def test_state_is_constant_in_sequence_length(name):
    sizes = []
    for n in (8, 40):
        module = effprof.build(name, batch=1, seq_len=n, d_model=16, chunk_size=8) if name != "s4" else effprof.build(
            name, batch=1, seq_len=n, d_model=16
        )
        with torch.no_grad():
            _, state = module.prefill(_x(1, n, 16))
        sizes.append(state_nbytes(state))
    assert sizes[0] == sizes[1] > 0


@pytest.mark.parametrize("scale", [0.1, 1.0, 10.0, 100.0])
def test_ssd_chunked_error_is_within_the_stated_bound(scale):
    """ssd.py's docstring: chunked's fp32 error relative to the output is at most about u·(1 + max_chunk |Σ a|)."""
    g = torch.Generator().manual_seed(0)
    b, H, n, P, N, Q = 2, 3, 64, 4, 5, 16
    X, B, C = torch.randn(b, H, n, P, generator=g), torch.randn(b, n, N, generator=g), torch.randn(b, n, N, generator=g)
    a = -torch.rand(b, H, n, generator=g) * scale
    y, _ = chunked_ssd(X, a, B, C, Q)
    zeros = torch.zeros(b, H, P, N, dtype=torch.float64)
    expected, _ = recurrent_ssd(X.double(), a.double(), B.double(), C.double(), zeros)
    error = float((y.double() - expected).abs().max() / expected.abs().max())
    bound = 2**-24 * (1 + float(a.reshape(b, H, -1, Q).sum(-1).abs().max()))
    assert error <= 4 * bound, (error, bound)


def test_loading_the_kernel_keeps_subnormal_floats():
    """Linking with -ffast-math adds crtfastmath.o, which turns on flush-to-zero for the whole process at load:
    every later computation (torch's, numpy's) would lose its subnormal numbers. The kernel must not do that."""
    import subprocess
    import sys

    code = (
        "import numpy as np, torch\n"
        "from effprof import kernels\n"
        "assert kernels.load('selective_scan') is not None, kernels.status('selective_scan')\n"
        "tiny = np.float32(1e-40)\n"
        "assert tiny * np.float32(1.0) > 0, 'numpy flushes subnormals to zero'\n"
        "assert (torch.tensor(1e-40) * 1.0).item() > 0, 'torch flushes subnormals to zero'\n"
    )
    if kernels.load("selective_scan") is None:
        pytest.skip(f"kernel not built here: {kernels.status('selective_scan')}")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_explain_and_the_progress_line_say_which_form_ran(monkeypatch):
    """`explain` names the form impl=auto resolves to here, and why where it falls back; a mechanism with no
    faster form says it offers no auto; the progress line of an auto point shows the form that ran."""
    from typer.testing import CliRunner

    from effprof.cli import app
    from effprof.render.console import point_label

    runner = CliRunner()
    built = kernels.load("selective_scan") is not None
    out = runner.invoke(app, ["explain", "mamba", "--json"])
    assert out.exit_code == 0
    assert ("→ chunked_c (the compiled scan" if built else "→ chunked (chunked_c is not built here") in json_loads(out.stdout)["forms"]
    monkeypatch.setenv("EFFPROF_KERNELS", "0")
    kernels.load.cache_clear()
    try:
        out = runner.invoke(app, ["explain", "mamba", "--json"])
    finally:
        monkeypatch.delenv("EFFPROF_KERNELS")
        kernels.load.cache_clear()
    assert "forward/train/decode → chunked (chunked_c is not built here: disabled by EFFPROF_KERNELS=0)" in json_loads(out.stdout)["forms"]
    out = runner.invoke(app, ["explain", "softmax_attention", "--json"])
    assert "default impl=sdpa: runs at every point" in json_loads(out.stdout)["forms"] and "offers no impl=auto" in json_loads(out.stdout)["forms"]
    record = {"mechanism": "mamba", "mode": "forward", "impl": "auto", "impl_resolved": "chunked_c", "seq_len": 64}
    assert point_label(record) == "mamba forward impl=auto→chunked_c seq_len=64"
    assert point_label({**record, "impl": "chunked", "impl_resolved": "chunked"}) == "mamba forward impl=chunked seq_len=64"
    from rich.console import Console

    from effprof.render.console import record_table

    console = Console(width=200, record=True)
    console.print(record_table({**record, "status": "ok", "impl_resolved": "chunked", "impl_reason": "chunked_c runs in float32 only, not bfloat16"}))
    assert "auto → chunked: chunked_c runs in float32 only, not bfloat16" in console.export_text()
    console.print(record_table({**record, "status": "ok", "impl": "chunked", "impl_resolved": "chunked"}))
    assert "→" not in console.export_text()


def json_loads(text: str):
    import json

    return json.loads(text)
