"""Week 13: hardware. FlashAttention computes the same FLOPs as naive attention but never writes the n×n matrix
to slow memory: peak memory O(N) instead of O(N²), fewer bytes moved, higher arithmetic intensity."""

from effprof.course import read
from effprof.course.lab import Finding, Lab, Sweep

SIZES = [256, 512, 1024, 2048]
IMPLS = ["naive", "tiled", "sdpa"]


def memory(session, extras):
    parts = [f"{impl} {read.exponent_text(read.fit(session, 'softmax_attention', 'peak_bytes', 'forward', impl=impl))}" for impl in IMPLS]
    return Finding("peak memory as N grows: naive, tiled (FlashAttention in torch), fused sdpa", "; ".join(parts), "tiling keeps O(N·B), never N×N")


def peak(session, extras):
    n = read.largest(session, "seq_len")
    naive = read.value(session, "softmax_attention", "forward", "peak_bytes", impl="naive", seq_len=n)
    tiled = read.value(session, "softmax_attention", "forward", "peak_bytes", impl="tiled", seq_len=n)
    return Finding(f"peak memory at N={n}: naive against tiled", f"{read.show(naive, 'bytes')} vs {read.show(tiled, 'bytes')} "
                   f"({read.times(read.ratio(naive, tiled))})", "")


def flops(session, extras):
    n = read.largest(session, "seq_len")
    naive = read.value(session, "softmax_attention", "forward", "flops_counted", impl="naive", seq_len=n)
    tiled = read.value(session, "softmax_attention", "forward", "flops_counted", impl="tiled", seq_len=n)
    return Finding(f"FLOPs at N={n}: naive against tiled", f"{read.show(naive, 'flops')} vs {read.show(tiled, 'flops')}",
                   "tiling skips the blocks above the causal diagonal; IO, not FLOPs, is what it saves")


def intensity(session, extras):
    n = read.largest(session, "seq_len")
    parts, moved = [], {}
    for impl in IMPLS:
        moved[impl] = read.value(session, "softmax_attention", "forward", "bytes_moved", impl=impl, seq_len=n)
        ai = read.value(session, "softmax_attention", "forward", "arithmetic_intensity", impl=impl, seq_len=n)
        parts.append(f"{impl} {read.show(moved[impl], 'bytes')} ({ai:.3g} FLOP/B)" if ai is not None else f"{impl} {read.NOT_MEASURED}")
    peak = read.value(session, "softmax_attention", "forward", "peak_flops_per_s", seq_len=n)
    bandwidth = read.value(session, "softmax_attention", "forward", "peak_bytes_per_s", seq_len=n)
    ridge = read.ratio(peak, bandwidth)
    meaning = f"this machine's ridge point is {ridge:.3g} FLOP/B: below it a kernel waits on memory" if ridge else ""
    tiled, naive = moved["tiled"], moved["naive"]
    if tiled is not None and naive is not None and tiled >= naive:
        meaning += ("; written in torch, each tile's S and P still pass through memory, so the tiled form moves no fewer bytes: "
                    "the IO saving needs the fused kernel (sdpa)")
    return Finding(f"bytes moved (cost model) and arithmetic intensity at N={n}", ", ".join(parts), meaning)


def speed(session, extras):
    n = read.largest(session, "seq_len")
    times = {impl: read.value(session, "softmax_attention", "forward", "time_s", impl=impl, seq_len=n) for impl in IMPLS}
    return Finding(f"time at N={n} on this CPU", ", ".join(f"{i} {read.show(t, 'time')}" for i, t in times.items()),
                   "the tiled form is a Python loop over key blocks: FlashAttention's speed needs a fused kernel (sdpa)")


LAB = Lab(
    week=13, title="Hardware & implementation: IO against compute",
    concept="FlashAttention: the same O(N²d) FLOPs, O(N) memory, fewer bytes moved — IO complexity, not FLOPs, sets the speed.",
    sweeps=(Sweep(("softmax_attention",), {"seq_len": SIZES, "impl": IMPLS}),),
    looks=(memory, peak, flops, intensity, speed),
)
