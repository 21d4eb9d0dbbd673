"""A solution of the linear-attention template (running sums by cumsum: O(n·D·d)), and planted mistakes."""

import torch
import torch.nn.functional as F

from effprof.course.templates.linear_attention import MyLinearAttention

EPS = 1e-6


class Solution(MyLinearAttention):
    def phi(self, t: torch.Tensor) -> torch.Tensor:
        return F.elu(t) + 1

    def heads(self, t: torch.Tensor) -> torch.Tensor:
        b, n, _ = t.shape
        return t.view(b, n, self.n_heads, self.head_dim).transpose(1, 2)  # (b, h, n, d)

    def attend(self, x: torch.Tensor, state: dict):
        q, k = self.phi(self.heads(self.q_proj(x))), self.phi(self.heads(self.k_proj(x)))  # (b, h, n, D)
        v = self.heads(self.v_proj(x))  # (b, h, n, d)
        S = state["S"][:, :, None] + self.running(k[..., :, None] * v[..., None, :])  # S_t: (b, h, n, D, d)
        z = state["z"][:, :, None] + self.running(k)  # z_t: (b, h, n, D)
        o = self.normalise((q[..., None, :] @ S)[..., 0, :], (q * z).sum(-1, keepdim=True))  # (b, h, n, d)
        b, h, n, d = o.shape
        return self.o_proj(o.transpose(1, 2).reshape(b, n, h * d)), self.final(S, z, k, v)

    def running(self, t: torch.Tensor) -> torch.Tensor:
        return t.cumsum(2)

    def normalise(self, num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
        return num / (den + EPS)

    def final(self, S, z, k, v) -> dict:
        return {"S": S[:, :, -1].clone(), "z": z[:, :, -1].clone()}

    def forward(self, x):
        return self.attend(x, self.init_state(x.shape[0]))[0]

    def init_state(self, batch):
        w = self.q_proj.weight
        return {"S": w.new_zeros(batch, self.n_heads, self.head_dim, self.head_dim), "z": w.new_zeros(batch, self.n_heads, self.head_dim)}

    def prefill(self, x):
        return self.attend(x, self.init_state(x.shape[0]))

    def step(self, x_t, state):
        return self.attend(x_t, state)


class NonCausal(Solution):
    def running(self, t):  # the sum over every token, not up to t
        return t.sum(2, keepdim=True).expand_as(t)


class NoDenominator(Solution):
    def normalise(self, num, den):  # forgets φ(q_t) z_t
        return num


class ReluFeatures(Solution):
    def phi(self, t):  # relu instead of elu + 1
        return F.relu(t)


class GrowingState(Solution):
    """Keeps every φ(k) and v seen, and recomputes the sums from them: right outputs, a state that grows."""

    def final(self, S, z, k, v):
        return {"k": k, "v": v}

    def init_state(self, batch):
        w = self.q_proj.weight
        return {"k": w.new_zeros(batch, self.n_heads, 0, self.head_dim), "v": w.new_zeros(batch, self.n_heads, 0, self.head_dim)}

    def attend(self, x, state):
        if "S" in state:
            return super().attend(x, state)
        base = {"S": (state["k"].transpose(-2, -1) @ state["v"]), "z": state["k"].sum(2)}
        y, _ = super().attend(x, base)
        k, v = self.phi(self.heads(self.k_proj(x))), self.heads(self.v_proj(x))
        return y, {"k": torch.cat([state["k"], k], 2), "v": torch.cat([state["v"], v], 2)}

    def forward(self, x):
        return Solution.attend(self, x, Solution.init_state(self, x.shape[0]))[0]


def build(config, weights):
    return Solution(config, weights)


def build_noncausal(config, weights):
    return NonCausal(config, weights)


def build_no_denominator(config, weights):
    return NoDenominator(config, weights)


def build_relu(config, weights):
    return ReluFeatures(config, weights)


def build_growing_state(config, weights):
    return GrowingState(config, weights)
