"""The policy classes of behaviour cloning, each an MLP plus the head its loss needs.

Every policy has one flat parameter vector and the same four methods:

    params = policy.init(rng)                                   # [n_params]
    value, dparams = policy.loss(params, obs, actions, rng)     # BC loss and its gradient
    actions = policy.act(params, obs, rng, deterministic)       # env-ready actions
    logp = policy.log_prob(params, obs, actions)                # [B] (likelihood policies)

obs ``[B, obs_dim]`` (already normalized by the agent), actions ``[B]`` int (Discrete) or
``[B, D]`` in the env's units (Box). Box actions are mapped affinely to [-1, 1] per dimension
(x = 2 (a - low) / (high - low) - 1) before any loss, so one set of hyperparameters serves
every action range; ``act`` maps back. Log-probabilities are of the env-unit actions.

| policy           | network emits                          | loss (minirl.objectives.imitation) | act (deterministic / sampled)      |
|------------------|----------------------------------------|------------------------------------|------------------------------------|
| ``l2``           | a_hat [B, D] (Discrete: one-hot score) | l2_loss                            | a_hat (Discrete: argmax)           |
| ``categorical``  | logits [B, A]                          | categorical_nll                    | argmax / Categorical sample        |
| ``gaussian``     | mean, log_std [B, D]                   | gaussian_nll                       | mean / N(mean, sigma^2)            |
| ``mog``          | K logits, K D means, K D log_stds      | mixture_nll                        | mean of the likeliest comp. / sample|
| ``autoregressive``| n_bins logits per dimension           | autoregressive_nll (teacher forced)| greedy / ancestral, bin centres    |
| ``diffusion``    | eps_theta [B, D]                       | diffusion_eps_loss                 | K denoising steps from x_K         |

log_std heads are squashed to [LOG_STD_MIN, LOG_STD_MAX] = [-5, 0] (in the scaled units) by
log_std = lo + (hi - lo) sigmoid(h): the NLL of near-deterministic expert data would otherwise
drive sigma to 0 and the loss to -inf, and sigma = 1 is already the half-width of the scaled
action box (a larger cap let the Gaussian "explain" hard states by a wide sigma instead of
moving its mean). In the env's units the bounds scale with the box: per dimension sigma lies in
[e^-5, 1] * (high - low) / 2, so on a [-50, 50] box an expert whose own noise is below
e^-5 * 50 = 0.34 is fitted with sigma = 0.34 (its mean, and the deterministic action, are
unaffected); rescale such an action space (gymnasium's ``RescaleAction``) to learn a smaller one.

Lecture: Stanford CS224R "Imitation Learning" ("Learning distributions with neural networks",
"Generative models for policies", "Imitation learning - version 0 / version 1").
"""
from __future__ import annotations

import numpy as np
from gymnasium import spaces

from minirl.distributions import Categorical, DiagGaussian, MixtureOfGaussians
from minirl.nn import MLP, ReLU, Tanh
from minirl.objectives.imitation import (autoregressive_inputs, autoregressive_nll, bin_centers,
                                         categorical_nll, cosine_beta_schedule, ddpm_reverse_step,
                                         diffusion_eps_loss, discretize, gaussian_nll, l2_loss,
                                         mixture_nll, q_sample, timestep_embedding)

__all__ = ["POLICIES", "make_policy", "L2Policy", "CategoricalPolicy", "GaussianPolicy",
           "MixturePolicy", "AutoregressivePolicy", "DiffusionPolicy"]

LOG_STD_MIN, LOG_STD_MAX = -5.0, 0.0
_ACT = {"tanh": Tanh, "relu": ReLU}


def squash_log_std(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(log_std, dlog_std/dh)`` with log_std = lo + (hi - lo) sigmoid(h), elementwise."""
    s = 1.0 / (1.0 + np.exp(-h))
    span = LOG_STD_MAX - LOG_STD_MIN
    return LOG_STD_MIN + span * s, span * s * (1.0 - s)


class _Policy:
    """An MLP ``in_dim -> hidden -> out_dim`` and the action-space bookkeeping."""

    kinds: tuple = ("box",)          # which action spaces the policy supports

    def __init__(self, obs_dim: int, action_space: spaces.Space, hidden_sizes=(64, 64),
                 activation: str = "tanh", dtype=np.float64):
        self.discrete = isinstance(action_space, spaces.Discrete)
        if self.discrete and "discrete" not in self.kinds:
            raise TypeError(f"{type(self).__name__} needs a Box action space, got {action_space}")
        if not self.discrete:
            if "box" not in self.kinds:
                raise TypeError(f"{type(self).__name__} needs a Discrete action space, got "
                                f"{action_space}")
            if not (isinstance(action_space, spaces.Box) and len(action_space.shape) == 1
                    and np.all(np.isfinite(action_space.low))
                    and np.all(np.isfinite(action_space.high))):
                raise TypeError(f"action space must be Discrete or a bounded 1-D Box, got "
                                f"{action_space}")
            self.low = action_space.low.astype(np.float64)
            self.high = action_space.high.astype(np.float64)
        self.space = action_space
        self.obs_dim = int(obs_dim)
        self.act_dim = int(action_space.n) if self.discrete else int(action_space.shape[0])
        self.dtype = np.dtype(dtype)
        self.net = MLP([self.in_dim(), *hidden_sizes, self.out_dim()], _ACT[activation],
                       dtype=self.dtype)
        self.n_params = self.net.n_params

    def in_dim(self) -> int:
        return self.obs_dim

    def out_dim(self) -> int:
        return self.act_dim

    def init(self, rng: np.random.Generator) -> np.ndarray:
        """Orthogonal weights (gain sqrt 2 hidden, 0.01 output), zero biases."""
        return self.net.init(rng, out_gain=0.01)

    def scale(self, actions) -> np.ndarray:
        """Box actions [B, D] in env units -> [-1, 1]: 2 (a - low) / (high - low) - 1."""
        # Every difference of halves: the same bits as the formula, and finite for a huge box
        # (Box(-1e308, 1e308): high - low overflows).
        a = np.asarray(actions, np.float64)
        return 2.0 * ((a / 2 - self.low / 2) / (self.high / 2 - self.low / 2)) - 1.0

    def unscale(self, x) -> np.ndarray:
        """[-1, 1] -> env units (the inverse of ``scale``): low + (x + 1) (high - low) / 2."""
        x = np.asarray(x, np.float64)          # (in halves, doubled at the end: no overflow)
        return 2.0 * (self.low / 2 + (x + 1.0) * 0.5 * (self.high / 2 - self.low / 2))

    def _grad(self, params, cache, dout) -> np.ndarray:
        return self.net.backward(params, cache, dout, need_dx=False)[0]

    def log_prob(self, params, obs, actions) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} has no likelihood")


class L2Policy(_Policy):
    """Version 0: a deterministic a_hat = f(s) fit by L2 regression (Discrete: to one-hot)."""

    kinds = ("box", "discrete")

    def _targets(self, actions):
        if self.discrete:
            return np.eye(self.act_dim)[np.asarray(actions)]
        return self.scale(actions)

    def loss(self, params, obs, actions, rng=None):
        out, cache = self.net.forward(params, obs)
        value, dout = l2_loss(out, self._targets(actions).astype(self.dtype))
        return value, self._grad(params, cache, dout)

    def act(self, params, obs, rng=None, deterministic=True):
        out = self.net.forward(params, obs)[0]
        return np.argmax(out, axis=1) if self.discrete else self.unscale(out)


class CategoricalPolicy(_Policy):
    """pi(a|s) = softmax(f(s))[a] for Discrete actions."""

    kinds = ("discrete",)

    def loss(self, params, obs, actions, rng=None):
        logits, cache = self.net.forward(params, obs)
        value, dlogits = categorical_nll(logits, actions)
        return value, self._grad(params, cache, dlogits)

    def act(self, params, obs, rng=None, deterministic=True):
        dist = Categorical(self.net.forward(params, obs)[0])
        return dist.mode() if deterministic else dist.sample(rng)

    def log_prob(self, params, obs, actions):
        return Categorical(self.net.forward(params, obs)[0]).log_prob(actions)


class GaussianPolicy(_Policy):
    """pi(a|s) = N(mu(s), diag sigma(s)^2): one mode."""

    def out_dim(self):
        return 2 * self.act_dim

    def _dist(self, out):
        log_std, dsq = squash_log_std(out[:, self.act_dim:])
        return out[:, :self.act_dim], log_std, dsq

    def loss(self, params, obs, actions, rng=None):
        out, cache = self.net.forward(params, obs)
        mean, log_std, dsq = self._dist(out)
        value, (dmean, dlog_std) = gaussian_nll(mean, log_std, self.scale(actions))
        return value, self._grad(params, cache, np.concatenate([dmean, dlog_std * dsq], axis=1))

    def act(self, params, obs, rng=None, deterministic=True):
        mean, log_std, _ = self._dist(self.net.forward(params, obs)[0])
        return self.unscale(mean if deterministic else DiagGaussian(mean, log_std).sample(rng))

    def log_prob(self, params, obs, actions):
        mean, log_std, _ = self._dist(self.net.forward(params, obs)[0])
        jac = np.sum(np.log(self.high / 2 - self.low / 2))      # da/dx of unscale
        return DiagGaussian(mean, log_std).log_prob(self.scale(actions)) - jac


class MixturePolicy(_Policy):
    """pi(a|s) = sum_k w_k(s) N(mu_k(s), diag sigma_k(s)^2), K components."""

    def __init__(self, *args, n_components: int = 5, **kw):
        self.k = int(n_components)
        if self.k < 1:
            raise ValueError(f"n_components must be >= 1, got {n_components}")
        super().__init__(*args, **kw)

    def out_dim(self):
        return self.k * (1 + 2 * self.act_dim)

    def init(self, rng):
        """As the base, but the means' output weights get gain 1 so that the components start
        apart (with every mean near 0 they would all get the same gradient)."""
        params = self.net.init(rng, out_gain=1.0)
        last = self.net.views(params)[f"{len(self.net.layers) - 1}.weight"]
        last[:, :self.k] *= 0.01
        return params

    def _split(self, out):
        b, k, d = out.shape[0], self.k, self.act_dim
        logits = out[:, :k]
        means = out[:, k:k + k * d].reshape(b, k, d)
        log_stds, dsq = squash_log_std(out[:, k + k * d:].reshape(b, k, d))
        return logits, means, log_stds, dsq

    def loss(self, params, obs, actions, rng=None):
        out, cache = self.net.forward(params, obs)
        logits, means, log_stds, dsq = self._split(out)
        value, (dlogits, dmeans, dlog_stds) = mixture_nll(logits, means, log_stds,
                                                          self.scale(actions))
        b = out.shape[0]
        dout = np.concatenate([dlogits, dmeans.reshape(b, -1), (dlog_stds * dsq).reshape(b, -1)],
                              axis=1)
        return value, self._grad(params, cache, dout)

    def dist(self, params, obs) -> MixtureOfGaussians:
        """The mixture over *scaled* actions ([-1, 1] units)."""
        logits, means, log_stds, _ = self._split(self.net.forward(params, obs)[0])
        return MixtureOfGaussians(logits, means, log_stds)

    def act(self, params, obs, rng=None, deterministic=True):
        dist = self.dist(params, obs)
        return self.unscale(dist.mode() if deterministic else dist.sample(rng))

    def log_prob(self, params, obs, actions):
        jac = np.sum(np.log(self.high / 2 - self.low / 2))      # (high - low)/2, no overflow
        return self.dist(params, obs).log_prob(self.scale(actions)) - jac


class AutoregressivePolicy(_Policy):
    """p(b|s) = prod_d p(b_d | s, b_<d) over n_bins bins per dimension (one shared network)."""

    def __init__(self, *args, n_bins: int = 21, **kw):
        self.n_bins = int(n_bins)
        if self.n_bins < 2:
            raise ValueError(f"n_bins must be >= 2, got {n_bins}")
        super().__init__(*args, **kw)
        self._ones = np.ones(self.act_dim)

    def in_dim(self):
        return self.obs_dim + self.act_dim * self.n_bins + self.act_dim

    def out_dim(self):
        return self.n_bins

    def _bins(self, actions):
        return discretize(self.scale(actions), -self._ones, self._ones, self.n_bins)

    def loss(self, params, obs, actions, rng=None):
        bins = self._bins(actions)
        x = autoregressive_inputs(obs, bins, self.n_bins)        # teacher forcing
        logits, cache = self.net.forward(params, x)              # [B, D, n_bins]
        value, dlogits = autoregressive_nll(logits, bins)
        return value, self._grad(params, cache, dlogits)

    def act(self, params, obs, rng=None, deterministic=True):
        obs = np.asarray(obs, self.dtype)
        b, d = obs.shape[0], self.act_dim
        bins = np.zeros((b, d), np.int64)
        for j in range(d):      # rows for d' > j are unused; only factor j is read
            x = autoregressive_inputs(obs, bins, self.n_bins)[:, j]
            dist = Categorical(self.net.forward(params, x)[0])
            bins[:, j] = dist.mode() if deterministic else dist.sample(rng)
        return self.unscale(bin_centers(bins, -self._ones, self._ones, self.n_bins))

    def log_prob(self, params, obs, actions):
        """log p(b|s) - sum_d log width_d: the piecewise-constant density of a (env units)."""
        bins = self._bins(actions)
        logits = self.net.forward(params, autoregressive_inputs(obs, bins, self.n_bins))[0]
        width = 2.0 * ((self.high / 2 - self.low / 2) / self.n_bins)  # (high - low)/n_bins
        return Categorical(logits).log_prob(bins).sum(axis=1) - np.sum(np.log(width))


class DiffusionPolicy(_Policy):
    """A DDPM over scaled actions, eps_theta(s, x_t, t) = f([s, x_t, emb(t)]), K steps."""

    def __init__(self, *args, n_steps: int = 20, emb_dim: int = 16, **kw):
        self.n_steps, self.emb_dim = int(n_steps), int(emb_dim)
        self.betas = cosine_beta_schedule(self.n_steps)
        super().__init__(*args, **kw)

    def in_dim(self):
        return self.obs_dim + self.act_dim + self.emb_dim

    def init(self, rng):
        return self.net.init(rng, out_gain=1.0)

    def _input(self, obs, x, t):
        return np.concatenate([obs, x, timestep_embedding(t, self.n_steps, self.emb_dim)],
                              axis=1).astype(self.dtype)

    def loss(self, params, obs, actions, rng):
        """eps-MSE at one (t, eps) draw per sample: t ~ U{1..K}, eps ~ N(0, I) from ``rng``."""
        x0 = self.scale(actions)
        b = x0.shape[0]
        t = rng.integers(1, self.n_steps + 1, size=b)
        eps = rng.standard_normal(x0.shape)
        x_t = q_sample(x0, t, eps, self.betas)
        eps_pred, cache = self.net.forward(params, self._input(obs, x_t, t))
        value, deps = diffusion_eps_loss(eps_pred, eps)
        return value, self._grad(params, cache, deps)

    def act(self, params, obs, rng=None, deterministic=True):
        """K reverse steps from x_K ~ N(0, I). A diffusion policy has no cheap mode, so
        ``deterministic`` draws the noise from a fixed generator (seed 0): the same obs then
        always gives the same action, itself a sample of the learned distribution."""
        obs = np.asarray(obs, self.dtype)
        if deterministic:
            rng = np.random.default_rng(0)
        b = obs.shape[0]
        x = rng.standard_normal((b, self.act_dim))
        for t in range(self.n_steps, 0, -1):
            eps_pred = self.net.forward(params, self._input(obs, x, np.full(b, t)))[0]
            z = rng.standard_normal(x.shape) if t > 1 else np.zeros_like(x)
            x = ddpm_reverse_step(x, t, eps_pred, z, self.betas)
        return self.unscale(np.clip(x, -1.0, 1.0))


POLICIES = {"l2": L2Policy, "categorical": CategoricalPolicy, "gaussian": GaussianPolicy,
            "mog": MixturePolicy, "autoregressive": AutoregressivePolicy,
            "diffusion": DiffusionPolicy}


def make_policy(kind: str, obs_dim: int, action_space: spaces.Space, hidden_sizes=(64, 64),
                activation: str = "tanh", dtype=np.float64, n_components: int = 5,
                n_bins: int = 21, diffusion_steps: int = 20) -> _Policy:
    """The policy named ``kind`` (a key of ``POLICIES``); ValueError naming ``policy`` else."""
    if kind not in POLICIES:
        raise ValueError(f"policy must be one of {sorted(POLICIES)}, got {kind!r}")
    extra = {"mog": {"n_components": n_components}, "autoregressive": {"n_bins": n_bins},
             "diffusion": {"n_steps": diffusion_steps}}.get(kind, {})
    return POLICIES[kind](obs_dim, action_space, hidden_sizes, activation, dtype=dtype, **extra)
