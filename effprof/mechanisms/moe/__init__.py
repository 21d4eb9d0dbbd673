"""The moe family: channel-mixing layers whose compute follows the active experts.

- token_choice:  moe_topk, switch, gshard   each token picks its top-k experts (causal, decodes)
- expert_choice: moe_expert_choice          each expert picks its top-C tokens (non-causal)
- dense:         dense_ffn                  the dense FFN with the same active width, the baseline

Shared parts: router (P = softmax(XW_g + b_g), top-k, capacity), experts (FFNs),
diagnostics (load-balancing and z losses, expert load), cost (analytic FLOPs).
"""

from effprof.mechanisms.moe import dense, expert_choice, token_choice  # noqa: F401
