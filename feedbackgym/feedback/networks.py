"""Torch modules of the learned models (imported only when a model is built)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


class EnsembleMLP(torch.nn.Module):
    """``members`` independent MLPs ``width -> hidden x layers -> 1``, evaluated together as
    batched matrix products (``baddbmm``); hidden layers are leaky-ReLU, the output ``tanh``
    (``bounded``) or linear.

    :param width: input features.
    :param hidden: width of each hidden layer.
    :param layers: number of hidden layers.
    :param members: number of MLPs.
    :param generator: torch generator of the initial weights (torch.nn.Linear's init range).
    :param bounded: a ``tanh`` output in [-1, 1] (PEBBLE) or a linear one (imitation).
    """

    def __init__(
        self,
        width: int,
        hidden: int,
        layers: int,
        members: int,
        generator: Any = None,
        bounded: bool = False,
    ) -> None:
        super().__init__()
        self.members = members
        self.bounded = bounded
        sizes = [width] + [hidden] * layers + [1]
        self.weights = torch.nn.ParameterList()
        self.biases = torch.nn.ParameterList()
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
            bound = 1.0 / np.sqrt(max(fan_in, 1))
            w = (torch.rand(members, fan_in, fan_out, generator=generator) * 2 - 1) * bound
            b = (torch.rand(members, 1, fan_out, generator=generator) * 2 - 1) * bound
            self.weights.append(torch.nn.Parameter(w))
            self.biases.append(torch.nn.Parameter(b))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(n, f)`` for every member, or ``(members, n, f)``; -> ``(members, n)``."""
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.members, -1, -1)
        last = len(self.weights) - 1
        for k, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = torch.baddbmm(b, x, w)
            if k < last:
                x = torch.nn.functional.leaky_relu(x)
            elif self.bounded:
                x = torch.tanh(x)
        return x.squeeze(-1)
