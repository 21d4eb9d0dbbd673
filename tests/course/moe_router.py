"""A solution of the MoE-router template (each expert runs on its own tokens only), and planted mistakes."""

import torch
import torch.nn.functional as F

from effprof.course.templates.moe_router import MyMoE


class Solution(MyMoE):
    def probabilities(self, logits, shape):
        return torch.softmax(logits, -1)  # P: (T, e)

    def gates(self, probs):
        gates, experts = probs.topk(self.top_k, dim=-1)  # (T, k)
        return (gates / gates.sum(-1, keepdim=True) if self.top_k > 1 else gates), experts

    def expert(self, i, x):
        gate, up = (x @ self.experts.w_in[i]).chunk(2, -1)  # (C_i, f) each
        return (F.silu(gate) * up) @ self.experts.w_out[i]  # (C_i, d)

    def forward(self, x):
        b, n, d = x.shape
        tokens = x.reshape(b * n, d)  # (T, d)
        gates, chosen = self.gates(self.probabilities(self.router.gate(tokens), (b, n)))
        y = torch.zeros_like(tokens)
        for i in range(self.n_experts):
            rows, slot = (chosen == i).nonzero(as_tuple=True)  # the tokens that chose expert i
            if rows.numel():
                y.index_add_(0, rows, self.expert(i, tokens[rows]) * gates[rows, slot, None])
        return y.view(b, n, d)


class NoRenormalisation(Solution):
    def gates(self, probs):  # forgets G / Σ_k G
        return probs.topk(self.top_k, dim=-1)


class AllExperts(Solution):
    """Runs every expert on every token and zeroes the unchosen: the same outputs, work that ignores k."""

    def forward(self, x):
        b, n, d = x.shape
        tokens = x.reshape(b * n, d)
        gates, chosen = self.gates(self.probabilities(self.router.gate(tokens), (b, n)))
        weight = torch.zeros(b * n, self.n_experts).scatter(1, chosen, gates)  # (T, e), 0 where not chosen
        y = torch.zeros_like(tokens)
        for i in range(self.n_experts):
            y = y + self.expert(i, tokens) * weight[:, i:i + 1]
        return y.view(b, n, d)


class SoftmaxOverTokens(Solution):
    def probabilities(self, logits, shape):  # normalises each expert's scores over the sequence: sees the future
        b, n = shape
        return torch.softmax(logits.view(b, n, -1), dim=1).reshape(b * n, -1)


def build(config, weights):
    return Solution(config, weights)


def build_no_renormalisation(config, weights):
    return NoRenormalisation(config, weights)


def build_all_experts(config, weights):
    return AllExperts(config, weights)


def build_softmax_over_tokens(config, weights):
    return SoftmaxOverTokens(config, weights)
