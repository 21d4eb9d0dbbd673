"""Week 12: diffusion language models. An AR model runs one forward pass per generated token; a masked-diffusion
model runs diffusion_steps passes for the whole answer (LLaDA) or per block (BD3-LM), each over more tokens."""

from effprof.course import read
from effprof.course.lab import Finding, Lab, Sweep

GEN = [8, 16, 32, 64]
NAMES = ("ar_baseline", "llada", "bd3lm")


def passes(session, extras):
    n = read.largest(session, "gen_len")
    parts = []
    for name in NAMES:
        count = read.value(session, name, "decode", "forward_passes", gen_len=n)
        parts.append(f"{name} {count / n:.3g}" if count is not None else f"{name} {read.NOT_MEASURED}")
    return Finding(f"forward passes per generated token at gen_len={n}", ", ".join(parts), "AR: one per token; diffusion: steps per answer or per block")


def scaling(session, extras):
    parts = [f"{name} {read.exponent_text(read.fit(session, name, 'forward_passes', 'decode', axis='gen_len'), 'g')}" for name in NAMES]
    return Finding("passes per generation as the answer length g grows", "; ".join(parts), "LLaDA's count is set by diffusion_steps, not g")


def work(session, extras):
    n = read.largest(session, "gen_len")
    parts = [f"{name} {read.show(read.value(session, name, 'decode', 'flops_counted', gen_len=n), 'flops')}" for name in NAMES]
    return Finding(f"FLOPs per generated token at gen_len={n}", ", ".join(parts),
                   "fewer passes, but each re-reads the prompt and the answer bidirectionally, with no KV cache (LLaDA)")


LAB = Lab(
    week=12, title="Diffusion LLMs",
    concept="Masked diffusion predicts all masked tokens jointly: diffusion_steps passes per answer instead of one per token.",
    sweeps=(Sweep(NAMES, {"gen_len": GEN}, ("decode",), {"seq_len": 32, "llada.diffusion_steps": 8, "bd3lm.block_len": 8,
                                                        "bd3lm.diffusion_steps": 4}),),
    looks=(passes, scaling, work),
    timing=False,  # passes and FLOPs are counted; timing a 64-token generation 10× per point took minutes on this machine
)
