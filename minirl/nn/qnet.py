"""K independent Q-heads in one flat parameter vector: the Q-network of DQN and its
critic-ensemble variant (Stanford CS224R, "Critic Ensembling").

Each head is an MLP ``obs -> A`` Q-values (``minirl.nn.MLP``); the K heads' parameter vectors
are concatenated, so optimizers, Polyak averaging and save/load act on one array.
"""
from __future__ import annotations

import numpy as np

from kernels.qstep import fusable_sizes
from minirl.nn.layers import ACTIVATIONS
from minirl.nn.mlp import MLP

__all__ = ["QNet"]


class QNet:
    """K independent Q-heads ``Q_k(s, .)`` (MLPs obs -> A values), one flat vector ``[K * n]``.

    ``forward(params, obs, role)`` -> ``(q [K, B, A], caches)``; ``backward(params, caches,
    dq [K, B, A], out)`` -> dL/dparams ``[K * n]``. Each ``role`` ("train", "next", "act")
    has its own preallocated workspaces, so a forward for targets never overwrites the cache
    the training step's backward needs.
    """

    def __init__(self, obs_dim: int, n_actions: int, hidden_sizes, activation: str,
                 n_critics: int, dtype):
        self.mlp = MLP([obs_dim, *hidden_sizes, n_actions], ACTIVATIONS[activation],
                       dtype=np.dtype(dtype))
        self.K, self.n_actions, self.dtype = int(n_critics), int(n_actions), np.dtype(dtype)
        self.n = self.mlp.n_params
        self.n_params = self.K * self.n
        self._ws = {role: [self.mlp.workspace() for _ in range(self.K)]
                    for role in ("train", "next", "act")}
        self._heads = (None, None)
        # one ReLU MLP: the fused kernel's network (kernels.qstep)
        self.fusable = (self.K == 1 and activation == "relu"
                        and fusable_sizes(self.mlp.sizes))
        self.sizes = np.array(self.mlp.sizes, np.int64)

    def init(self, rng: np.random.Generator, scheme: str = "orthogonal") -> np.ndarray:
        """K independent draws. ``"orthogonal"``: gain sqrt 2 hidden, 1 output, zero biases.
        ``"uniform"``: every weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch's
        ``nn.Linear`` default, what Stable-Baselines3's DQN starts from); nonzero biases put
        the first layer's ReLU kinks away from the origin, where CartPole's states lie."""
        if scheme == "orthogonal":
            return np.concatenate([self.mlp.init(rng) for _ in range(self.K)])
        heads = []
        for _ in range(self.K):
            p = self.mlp.zeros()
            for name, view in self.mlp.views(p).items():
                layer = self.mlp.layers[int(name.split(".")[0])]
                a = 1.0 / np.sqrt(layer.in_features)
                view[...] = rng.uniform(-a, a, size=view.shape)
            heads.append(p)
        return np.concatenate(heads)

    def heads(self, params: np.ndarray) -> list[np.ndarray]:
        """The K contiguous slices of ``params`` (the last list is reused for the same array)."""
        if self._heads[0] is not params:
            self._heads = (params, [params[k * self.n:(k + 1) * self.n] for k in range(self.K)])
        return self._heads[1]

    def forward(self, params: np.ndarray, obs: np.ndarray, role: str = "act"):
        ws = self._ws[role]
        if self.K == 1:
            q, cache = self.mlp.forward(params, obs, ws[0])
            return q[None], [cache]
        outs = [self.mlp.forward(p, obs, ws[k]) for k, p in enumerate(self.heads(params))]
        q = outs[0][0][None] if self.K == 1 else np.stack([o[0] for o in outs])
        return q, [o[1] for o in outs]

    def backward(self, params: np.ndarray, caches, dq: np.ndarray, out: np.ndarray):
        if self.K == 1:
            return self.mlp.backward(params, caches[0], dq[0], need_dx=False, out=out)[0]
        for k, (p, g) in enumerate(zip(self.heads(params), self.heads(out))):
            self.mlp.backward(p, caches[k], dq[k], need_dx=False, out=g)
        return out
