"""The hybrid family: stacks that mix registered mechanisms, each block x + f(RMSNorm(x)).

- hybrid: a stack from a `pattern` of layer letters or names and `n_layers` (users describe their own)
- jamba:  Mamba with one attention layer in eight, MoE replacing every other FFN (AI21 2024)
- zamba:  a Mamba backbone with one shared attention block applied every `shared_every` layers (Zyphra 2024)
- hymba:  attention and SSM heads in parallel in each layer, sliding windows, learnable meta tokens (NVIDIA 2024)

Files: layers.py (letters, names, the sub-layers' configs and kinds), plan.py (a stack's layout as
data), blocks.py and stack.py (the modules), cost.py (Σ of the layers' own cost models + norms and
residuals, by layer kind); one module per registered stack.
"""

from effprof.mechanisms.hybrid import hybrid, hymba, jamba, zamba  # noqa: F401
