"""A solution of the sliding-window template (each query gathers its w keys by unfold: O(n·w·d)), and planted mistakes."""

import math

import torch

from effprof.course.templates.sliding_window import MySlidingWindow


class Solution(MySlidingWindow):
    def heads(self, t):
        b, n, _ = t.shape
        return t.view(b, n, self.n_heads, self.head_dim).transpose(1, 2)  # (b, h, n, d)

    def span(self) -> int:
        return self.window

    def attend(self, q, k, v):
        """q: (b, h, n, d); k, v: (b, h, m + n, d), the last n aligned with q -> (b, h, n, d)."""
        w, n, past = self.span(), q.shape[2], k.shape[2] - q.shape[2]
        k = torch.nn.functional.pad(k, (0, 0, w - 1, 0))  # (b, h, w − 1 + m + n, d)
        v = torch.nn.functional.pad(v, (0, 0, w - 1, 0))
        keys = k.unfold(2, w, 1)[:, :, past:]  # query i's keys i − w + 1 … i: (b, h, n, d, w)
        values = v.unfold(2, w, 1)[:, :, past:]
        scores = (q[..., None, :] @ keys)[..., 0, :] / math.sqrt(self.head_dim)  # (b, h, n, w)
        position = torch.arange(n)[:, None] + past - (w - 1) + torch.arange(w)[None, :]  # key positions: (n, w)
        scores = scores.masked_fill(position < 0, float("-inf"))
        return (values @ torch.softmax(scores, -1)[..., None])[..., 0]  # (b, h, n, d)

    def run(self, x, state):
        q, k, v = (self.heads(p(x)) for p in (self.q_proj, self.k_proj, self.v_proj))
        k, v = torch.cat([state["key"], k], 2), torch.cat([state["value"], v], 2)
        o = self.attend(q, k, v)
        b, h, n, d = o.shape
        keep = min(self.window - 1, k.shape[2])
        return self.o_proj(o.transpose(1, 2).reshape(b, n, h * d)), {"key": k[:, :, k.shape[2] - keep:].clone(),
                                                                      "value": v[:, :, v.shape[2] - keep:].clone()}

    def forward(self, x):
        return self.run(x, self.init_state(x.shape[0]))[0]

    def init_state(self, batch):
        empty = self.q_proj.weight.new_zeros(batch, self.n_heads, 0, self.head_dim)
        return {"key": empty, "value": empty.clone()}

    def prefill(self, x):
        return self.run(x, self.init_state(x.shape[0]))

    def step(self, x_t, state):
        return self.run(x_t, state)


class DenseMasked(Solution):
    """The whole n×n score matrix, masked to the band: the same outputs, quadratic work."""

    def attend(self, q, k, v):
        n, m = q.shape[2], k.shape[2]
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)  # (b, h, n, m)
        i = torch.arange(n)[:, None] + m - n
        j = torch.arange(m)[None, :]
        scores = scores.masked_fill((j > i) | (j <= i - self.window), float("-inf"))
        return torch.softmax(scores, -1) @ v


class OffByOne(Solution):
    def span(self):  # w + 1 keys: one too many
        return self.window + 1


def build(config, weights):
    return Solution(config, weights)


def build_dense(config, weights):
    return DenseMasked(config, weights)


def build_off_by_one(config, weights):
    return OffByOne(config, weights)
