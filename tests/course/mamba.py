"""A solution of the Mamba template (the paper's sequential scan), and planted mistakes."""

import torch
import torch.nn.functional as F

from effprof.course.templates.mamba import MyMamba


class Solution(MyMamba):
    def causal_conv(self, x_in, window):
        """x_in: (b, n, D_in), window: (b, D_in, K−1) the inputs before -> x̃ (b, n, D_in), the next window."""
        inputs = torch.cat([window, x_in.transpose(1, 2)], dim=-1)  # (b, D_in, K − 1 + n)
        w = self.conv.conv.weight  # (D_in, 1, K)
        out = F.conv1d(inputs, w, self.conv.conv.bias, groups=w.shape[0])  # (b, D_in, n)
        return out.transpose(1, 2), inputs[..., inputs.shape[-1] - (self.width - 1):].clone()

    def decay(self, delta, A):
        return torch.exp(delta[..., None] * A)  # Ā_t = exp(Δ_t A): (b, D_in, N)

    def run(self, u, state):
        x_in, z = self.in_proj(u).chunk(2, dim=-1)  # (b, n, D_in) each
        x, window = self.causal_conv(x_in, state["conv"])
        x = F.silu(x)
        delta, B, C = self.x_proj(x).split([self.rank, self.d_state, self.d_state], dim=-1)
        delta = F.softplus(self.dt_proj(delta))  # Δ: (b, n, D_in)
        A = -torch.exp(self.A_log)  # (D_in, N)
        h, ys = state["ssm"], []
        for t in range(u.shape[1]):
            h = self.decay(delta[:, t], A) * h + (delta[:, t] * x[:, t])[..., None] * B[:, t, None, :]  # h_t: (b, D_in, N)
            ys.append((h @ C[:, t, :, None])[..., 0])  # y_t = h_t C_t: (b, D_in)
        y = (torch.stack(ys, 1) + self.skip(x)) * F.silu(z)  # (b, n, D_in)
        return self.out_proj(y), {"conv": window, "ssm": h}

    def skip(self, x):
        return self.D * x  # D ⊙ x_t

    def forward(self, u):
        return self.run(u, self.init_state(u.shape[0]))[0]

    def init_state(self, batch):
        w = self.A_log
        return {"conv": w.new_zeros(batch, w.shape[0], self.width - 1), "ssm": w.new_zeros(batch, *w.shape)}

    def prefill(self, u):
        return self.run(u, self.init_state(u.shape[0]))

    def step(self, u_t, state):
        return self.run(u_t, state)


class MissingSkip(Solution):
    def skip(self, x):  # forgets D ⊙ x_t in y_t = h_t C_t + D ⊙ x_t
        return 0


class CentredConv(Solution):
    """Pads the convolution on both sides: each token's conv sees the next ones."""

    def causal_conv(self, x_in, window):
        if x_in.shape[1] == 1:
            return super().causal_conv(x_in, window)
        w = self.conv.conv.weight
        K = self.width
        out = F.conv1d(F.pad(x_in.transpose(1, 2), (K // 2, K - 1 - K // 2)), w, self.conv.conv.bias, groups=w.shape[0])
        return out.transpose(1, 2), F.pad(x_in.transpose(1, 2), (K - 1, 0))[..., -(K - 1):].clone()


def build(config, weights):
    return Solution(config, weights)


def build_missing_skip(config, weights):
    return MissingSkip(config, weights)


def build_centred_conv(config, weights):
    return CentredConv(config, weights)
