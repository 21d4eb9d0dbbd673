"""Routing diagnostics of the last forward call: load balance, router losses, dropped tokens.

    Load-balancing loss (Switch):  L_aux = e · Σ_i f_i · P_i
        f_i = fraction of the T·k routing assignments sent to expert i (before capacity)
        P_i = (1/T) Σ_x p_i(x), the mean router probability of expert i
        L_aux = 1 for a perfectly balanced router, up to e when every token picks one expert.
      (record field `aux_loss`; Switch's definition, which has k = 1, with f over all T·k assignments)
    The same loss as Mixtral / Hugging Face transformers compute it (`load_balancing_loss_func`):
        L_aux^HF = e · Σ_i f_i^HF · P_i,   f_i^HF = (assignments to expert i) / T   (per TOKEN, summed over
        the k slots), so L_aux^HF = k · L_aux: k for a balanced router, up to k·e.
      (record field `aux_loss_hf`; the two agree for k = 1; expert choice uses its mean k = T·k/T there)
    Router z-loss (ST-MoE):         L_z = (1/T) Σ_x (log Σ_i exp(z_i(x)))²,  z = X W_g + b_g
    Expert load:                    load_i = assignments routed to expert i (before capacity)
    Coefficient of variation:       load_cv = std(load) / mean(load)   (population std; 0 = balanced)

Glossary: T tokens, e n_experts, k top_k (expert choice: k = e·C/T assignments per token on average).
The layer keeps references to its router logits and expert loads (no arithmetic during
the measured call); `diagnostics()` computes these figures afterwards.
"""

from __future__ import annotations

import torch


def load_balancing_loss(probs: torch.Tensor, load: torch.Tensor) -> torch.Tensor:
    """L_aux = e · Σ_i f_i P_i from P (T, e) and load (e,), routed assignments per expert."""
    n_experts = probs.shape[-1]
    fraction = load.to(probs.dtype) / load.sum()  # f_i: (e,)
    mean_prob = probs.mean(dim=0)  # P_i: (e,)
    return n_experts * (fraction * mean_prob).sum()


def load_balancing_loss_hf(probs: torch.Tensor, load: torch.Tensor) -> torch.Tensor:
    """L_aux^HF = e · Σ_i (load_i / T) P_i, Mixtral's / Hugging Face's convention: k · L_aux."""
    n_experts = probs.shape[-1]
    fraction = load.to(probs.dtype) / probs.shape[0]  # f_i^HF: assignments per token, (e,)
    return n_experts * (fraction * probs.mean(dim=0)).sum()


def router_z_loss(logits: torch.Tensor) -> torch.Tensor:
    """L_z = mean over tokens of (logsumexp of the router logits)²; logits (T, e)."""
    return torch.logsumexp(logits, dim=-1).pow(2).mean()


def routing_statistics(logits: torch.Tensor, load: torch.Tensor) -> dict[str, float | list[float]]:
    """aux_loss, aux_loss_hf, z_loss, expert_load and load_cv from the router logits (T, e) and the load (e,)."""
    logits = logits.float()
    load = load.float()
    probs = torch.softmax(logits, dim=-1)
    return {
        "aux_loss": float(load_balancing_loss(probs, load)),
        "aux_loss_hf": float(load_balancing_loss_hf(probs, load)),
        "z_loss": float(router_z_loss(logits)),
        "expert_load": load.tolist(),
        "load_cv": float(load.std(unbiased=False) / load.mean()),
    }


class RoutingDiagnostics:
    """Mixin for routed layers: `remember` the last call's routing, `diagnostics()` reports on it."""

    _routing: tuple[torch.Tensor, torch.Tensor] | None = None

    def remember(self, logits: torch.Tensor, load: torch.Tensor) -> None:
        self._routing = (logits.detach(), load.detach())

    def dropped_fraction(self) -> float:
        raise NotImplementedError

    @torch.no_grad()
    def diagnostics(self) -> dict[str, float | list[float]]:
        """Figures for the LAST forward call (aux_loss, aux_loss_hf, z_loss, dropped_fraction, expert_load, load_cv)."""
        if self._routing is None:
            raise RuntimeError("diagnostics() reports on the last forward call; call the layer first")
        logits, load = self._routing
        return {**routing_statistics(logits, load), "dropped_fraction": self.dropped_fraction()}
