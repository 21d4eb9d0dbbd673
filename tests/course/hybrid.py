"""A solution of the hybrid template (the pre-norm residual stack around effprof's layers), and planted mistakes."""

import torch

from effprof.course.templates.hybrid import MyHybrid


class Solution(MyHybrid):
    def norm(self, i, h):
        return h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-6) * self.norm_weights[i]  # RMSNorm_i

    def add(self, h, y):
        return h + y  # the residual stream

    def forward(self, x):
        h = x
        for i, layer in enumerate(self.layers):
            h = self.add(h, layer(self.norm(i, h)))
        return h

    def init_state(self, batch):
        return tuple(layer.init_state(batch) for layer in self.layers)

    def prefill(self, x):
        h, states = x, []
        for i, layer in enumerate(self.layers):
            y, state = layer.prefill(self.norm(i, h))
            h = self.add(h, y)
            states.append(state)
        return h, tuple(states)

    def step(self, x_t, state):
        h, states = x_t, []
        for i, (layer, own) in enumerate(zip(self.layers, state, strict=False)):
            y, own = layer.step(self.norm(i, h), self.carried(layer, own, x_t.shape[0]))
            h = self.add(h, y)
            states.append(own)
        return h, tuple(states)

    def carried(self, layer, own, batch):
        return own


class NoResidual(Solution):
    def add(self, h, y):  # forgets the skip connection
        return y


class Forgetful(Solution):
    def carried(self, layer, own, batch):  # every step starts each layer from an empty state
        return layer.init_state(batch)


def build(config, weights):
    return Solution(config, weights)


def build_no_residual(config, weights):
    return NoResidual(config, weights)


def build_forgetful(config, weights):
    return Forgetful(config, weights)
