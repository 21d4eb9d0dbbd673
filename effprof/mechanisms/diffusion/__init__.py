"""The diffusion family: language models that generate with their own sampler over one shared denoiser.

- llada:        masked diffusion, a bidirectional denoiser over prompt + answer, S passes in all
- bd3lm:        block diffusion, blocks of B tokens left to right with a KV cache, S passes per block
- ar_baseline:  the same denoiser as a causal LM, one pass per token with a KV cache

Shared parts: denoiser (the transformer, its token embedding and head), sampling (one reverse step
with low-confidence remasking and its schedule), objective (the masked-diffusion loss), cost
(analytic FLOPs). Decode mode calls each model's prepare(x) once, not measured (the prompt's ids, and
its KV cache for ar_baseline and bd3lm), then measures generate(context, gen_len); figures are per
generated token.
"""

from effprof.mechanisms.diffusion import ar_baseline, bd3lm, llada  # noqa: F401
