"""Behaviour-cloning losses for every policy class of the imitation-learning lecture, and the
pieces of the discretized-autoregressive and diffusion policies that are pure math.

Every loss is ``(value, gradient w.r.t. what the network emitted)``, averaged over the batch
of B demonstration pairs (s_i, a_i):

| loss                          | network emits                         | value                                          |
|-------------------------------|---------------------------------------|------------------------------------------------|
| ``l2_loss``        (version 0)| a_hat [B, D]                          | 1/B sum_i ||a_i - a_hat_i||^2                  |
| ``categorical_nll``(version 1)| logits [B, A]                         | -1/B sum_i log softmax(z_i)[a_i]               |
| ``gaussian_nll``              | mean [B, D], log_std [B, D]           | -1/B sum_i log N(a_i; mu_i, diag sigma_i^2)    |
| ``mixture_nll``               | logits [B, K], means [B, K, D], log_stds [B, K, D] | -1/B sum_i log sum_k w_k N(a_i; mu_k, sigma_k) |
| ``autoregressive_nll``        | logits [B, D, n_bins] (teacher forced)| -1/B sum_i sum_d log p(b_id | s_i, b_i,<d)     |
| ``diffusion_eps_loss``        | eps_hat [B, D]                        | 1/B sum_i ||eps_i - eps_hat_i||^2              |

Lecture: Stanford CS224R "Imitation Learning": "Imitation learning - version 0" (L2 regression
to the expert's actions, a deterministic policy), "Imitation learning - version 1"
(min_theta -E_{(s,a)~D}[log pi_theta(a|s)] with an expressive distribution), "Learning
distributions with neural networks" (categorical for discrete actions, Gaussian for continuous
ones: "not very expressive"), "Generative models for policies" (mixture of Gaussians;
discretize + autoregressive p(a_1), p(a_2|a_1), ...; diffusion: "iteratively denoise").

Discretize + autoregressive. Each action dimension d of a Box in [low, high] is cut into
n_bins equal bins, b_d = floor((a_d - low_d) / width_d) (the top edge goes to the last bin), and
p(b | s) = prod_d p(b_d | s, b_<d). One network maps (s, one-hot b_<d, one-hot d) to the logits
of dimension d. Training feeds the *data's* b_<d (teacher forcing, ``autoregressive_inputs``),
so all D factors are computed in one batched forward; sampling draws b_1, then b_2 given the
sampled b_1, and so on. As a density over continuous actions (uniform within a bin)
log pi(a|s) = log p(b|s) - sum_d log width_d, which integrates to 1.

Diffusion (DDPM over actions, Ho, Jain & Abbeel 2020, arXiv:2006.11239; as a policy: Chi et
al. 2023, "Diffusion Policy", arXiv:2303.04137). Forward chain over K steps,
q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I), whose marginal has the closed form
q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I),  abar_t = prod_{j<=t} (1 - beta_j).
The schedule is the cosine one of Nichol & Dhariwal 2021 (arXiv:2102.09672):
abar_t = f(t)/f(0), f(t) = cos^2(((t/K + s)/(1 + s)) pi/2), s = 0.008, beta_t =
min(1 - abar_t/abar_{t-1}, 0.999); a linear schedule is also given. Training: t ~ U{1..K},
eps ~ N(0, I), x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, minimize
||eps - eps_theta(s, x_t, t)||^2.
Sampling: x_K ~ N(0, I), then K reverse steps (``ddpm_reverse_step``).
"""
from __future__ import annotations

import math

import numpy as np

from kernels._validate import as_float
from minirl.nn.losses import mean_f64, squared_error
from minirl.distributions import Categorical, DiagGaussian, MixtureOfGaussians

__all__ = [
    "l2_loss", "categorical_nll", "gaussian_nll", "mixture_nll", "autoregressive_nll",
    "diffusion_eps_loss", "discretize", "bin_centers", "autoregressive_inputs",
    "cosine_beta_schedule", "linear_beta_schedule", "alpha_bars", "q_sample", "q_step",
    "timestep_embedding", "ddpm_reverse_step",
]


def _batch(x, name: str, ndim: int) -> np.ndarray:
    arr = as_float(x, name)
    if arr.ndim != ndim or arr.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty {ndim}-D array, got shape {arr.shape}")
    return arr


def _same(ref_name, ref, **others):
    for name, arr in others.items():
        if arr.shape != ref.shape:
            raise ValueError(f"{name} must have the shape of {ref_name} {ref.shape}, "
                             f"got {arr.shape}")


# ----- version 0: deterministic policy --------------------------------------------------------

def l2_loss(pred, actions) -> tuple[float, np.ndarray]:
    """``L = 1/B sum_i ||a_i - a_hat_i||^2`` (sum over D, mean over B); ``(L, dL/da_hat)``.

    pred (a_hat) and actions: ``[B, D]``; dL/da_hat = 2 (a_hat - a) / B.
    Lecture: CS224R "Imitation learning - version 0". With multimodal data the minimizer is
    the conditional mean E[a|s], the average of the modes.
    Extremes: the value is finite whenever the true one fits float64 (float32 a_hat - a
    beyond float32, e.g. +-2e38, included); a gradient element beyond pred's largest float is
    +-inf (IEEE rounding; the optimizer then raises ``NonFiniteGradientError``).
    """
    return _squared_error(pred, actions, "pred", "actions")


def _squared_error(pred, target, pred_name: str, target_name: str):
    """``(1/B sum_i ||pred_i - target_i||^2, 2 (pred - target) / B)`` for ``[B, D]`` inputs,
    validated under the caller's argument names (L2 cloning and the DDPM loss share it)."""
    pred = _batch(pred, pred_name, 2)
    target = _batch(target, target_name, 2).astype(pred.dtype, copy=False)
    _same(pred_name, pred, **{target_name: target})
    # value in float64, gradient right wherever it fits pred's dtype (+-inf beyond it), also
    # where pred - target overflows float32 (``minirl.nn.losses.squared_error``)
    return squared_error(pred, target, pred.shape[0])


# ----- version 1: maximum likelihood ----------------------------------------------------------

def _nll(make_dist, params: tuple, x, dlogp) -> tuple[float, object]:
    """``(-mean_f64(log p(x)), log_prob_backward(x, dlogp))`` of ``make_dist(*params)``.

    Float32 parameters whose per-sample log-probability lies beyond float32 (a z^2 of
    1e57 in a Gaussian, logits 4e38 apart) are recomputed in float64, where that value is
    finite: the loss then is the true (finite) value instead of inf, and the gradient is the
    float64 one rounded once to float32 (an element beyond float32 is +-inf, IEEE rounding:
    the optimizer then raises ``NonFiniteGradientError``). Ordinary input: unchanged bits.
    """
    b = dlogp.shape[0]
    dist = make_dist(*params)
    with np.errstate(over="ignore"):
        logp = dist.log_prob(x)
    if np.isfinite(logp).all() or all(p.dtype == np.float64 for p in params):
        return -mean_f64(logp, b), dist.log_prob_backward(x, dlogp)
    dist = make_dist(*(p.astype(np.float64) for p in params))
    x64 = x.astype(np.float64) if x.dtype.kind == "f" else x
    value = -mean_f64(dist.log_prob(x64), b)
    grads = dist.log_prob_backward(x64, dlogp)
    with np.errstate(over="ignore"):    # beyond float32: +-inf (the rounding of the truth)
        if isinstance(grads, tuple):
            return value, tuple(g.astype(p.dtype) for g, p in zip(grads, params))
        return value, grads.astype(params[0].dtype)


def categorical_nll(logits, actions) -> tuple[float, np.ndarray]:
    """``L = -1/B sum_i log softmax(z_i)[a_i]``; ``(L, dL/dz = (softmax(z) - onehot(a)) / B)``.

    logits ``[B, A]``, actions ``[B]`` integer indices in [0, A).
    Lecture: CS224R "Learning distributions with neural networks" (1D discrete actions:
    categorical, "maximally expressive").
    """
    logits = _batch(logits, "logits", 2)
    b = logits.shape[0]
    return _nll(Categorical, (logits,), np.asarray(actions), np.full(b, -1.0 / b))


def gaussian_nll(mean, log_std, actions) -> tuple[float, tuple[np.ndarray, np.ndarray]]:
    """``L = -1/B sum_i log N(a_i; mu_i, diag(exp(log_std_i))^2)``; ``(L, (dmean, dlog_std))``.

    mean, log_std, actions: ``[B, D]``. Per element z = (a - mu)/sigma:
    dL/dmu = -z / (sigma B), dL/dlog_std = (1 - z^2) / B.
    Lecture: CS224R "Learning distributions with neural networks" (Gaussian: "not very
    expressive": one mode).
    """
    mean = _batch(mean, "mean", 2)
    log_std = _batch(log_std, "log_std", 2)
    actions = _batch(actions, "actions", 2)
    _same("mean", mean, log_std=log_std, actions=actions)
    b = mean.shape[0]
    return _nll(DiagGaussian, (mean, log_std), actions, np.full(b, -1.0 / b))


def mixture_nll(logits, means, log_stds, actions) -> tuple[float, tuple]:
    """``L = -1/B sum_i log sum_k w_ik N(a_i; mu_ik, sigma_ik)``, w_i = softmax(logits_i).

    logits ``[B, K]``, means and log_stds ``[B, K, D]``, actions ``[B, D]``. Returns
    ``(L, (dlogits, dmeans, dlog_stds))`` from ``MixtureOfGaussians.log_prob_backward``
    (responsibilities r_k: dlogits = -(r - w)/B, dmeans = -r z / (sigma B),
    dlog_stds = -r (z^2 - 1) / B). Log-sum-exp keeps it finite far from every mean.
    Lecture: CS224R "Generative models for policies" (mixture of Gaussians). Bishop 1994,
    "Mixture Density Networks".
    """
    means = _batch(means, "means", 3)
    logits = _batch(logits, "logits", 2)
    actions = _batch(actions, "actions", 2)
    if logits.shape != means.shape[:2]:
        raise ValueError(f"logits must have shape {means.shape[:2]}, got {logits.shape}")
    if actions.shape != (means.shape[0], means.shape[2]):
        raise ValueError(f"actions must have shape {(means.shape[0], means.shape[2])}, "
                         f"got {actions.shape}")
    log_stds = as_float(log_stds, "log_stds")
    b = means.shape[0]
    return _nll(MixtureOfGaussians, (logits, means, log_stds), actions, np.full(b, -1.0 / b))


# ----- discretize + autoregressive ------------------------------------------------------------

def _bounds(low, high, d: int | None = None):
    low, high = as_float(low, "low", np.float64), as_float(high, "high", np.float64)
    if low.ndim != 1 or low.shape != high.shape or (d is not None and low.shape[0] != d):
        raise ValueError(f"low and high must be [D] arrays of one shape (D = {d}), got "
                         f"{low.shape} and {high.shape}")
    if np.any(high <= low):
        raise ValueError("high must exceed low in every dimension")
    return low, high


def _n_bins(n_bins) -> int:
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 2:
        raise ValueError(f"n_bins must be an integer >= 2, got {n_bins!r}")
    return int(n_bins)


def discretize(actions, low, high, n_bins: int) -> np.ndarray:
    """Bin indices ``b [B, D]`` int64: b_d = floor((a_d - low_d) / width_d), clipped to
    [0, n_bins - 1] (so a_d = high_d lands in the last bin); width_d = (high_d - low_d)/n_bins.

    actions ``[B, D]`` must lie in [low, high] (ValueError names ``actions`` otherwise).
    """
    n_bins = _n_bins(n_bins)
    actions = _batch(actions, "actions", 2)
    low, high = _bounds(low, high, actions.shape[1])
    if np.any(actions < low) or np.any(actions > high):
        raise ValueError("actions must lie within [low, high] to be discretized")
    # (a - low) / width with both halved: the same quotient, no overflow for a huge box
    half_width = (high / 2 - low / 2) / n_bins
    return np.clip(np.floor((actions / 2 - low / 2) / half_width), 0,
                   n_bins - 1).astype(np.int64)


def bin_centers(bins, low, high, n_bins: int) -> np.ndarray:
    """Continuous actions ``[B, D]`` at the centres of bins ``[B, D]``: low + (b + 1/2) width."""
    n_bins = _n_bins(n_bins)
    bins = np.asarray(bins)
    if bins.ndim != 2 or bins.dtype.kind not in "iu":
        raise ValueError(f"bins must be a [B, D] integer array, got {bins.shape} {bins.dtype}")
    low, high = _bounds(low, high, bins.shape[1])
    if bins.size and (bins.min() < 0 or bins.max() >= n_bins):
        raise ValueError(f"bins must lie in [0, {n_bins})")
    # low + (b + 1/2) (high - low) / n_bins computed in halves (the same bits; high - low
    # overflows for a huge box), dividing first where even (b + 1/2) (high - low)/2 overflows.
    half = high / 2 - low / 2
    with np.errstate(over="ignore"):
        step = (bins + 0.5) * half / n_bins
    step = np.where(np.isfinite(step), step, (bins + 0.5) * (half / n_bins))
    return 2.0 * (low / 2 + step)


def autoregressive_inputs(obs, bins, n_bins: int) -> np.ndarray:
    """Teacher-forced network inputs ``[B, D, obs_dim + D n_bins + D]`` for all D factors.

    Row d is ``[s, onehot(b_1), ..., onehot(b_{d-1}), 0, ..., 0, onehot_D(d)]``: the state,
    the data's earlier bins (zeros for d' >= d, so the factor for d never sees b_d or later),
    and the position d. obs ``[B, obs_dim]``; bins ``[B, D]`` int in [0, n_bins).
    Sampling builds the same rows one d at a time from its own draws.
    """
    n_bins = _n_bins(n_bins)
    obs = _batch(obs, "obs", 2)
    bins = np.asarray(bins)
    if bins.ndim != 2 or bins.shape[0] != obs.shape[0] or bins.dtype.kind not in "iu":
        raise ValueError(f"bins must be [B, D] integers with B = {obs.shape[0]}, got "
                         f"{bins.shape} {bins.dtype}")
    if bins.size and (bins.min() < 0 or bins.max() >= n_bins):
        raise ValueError(f"bins must lie in [0, {n_bins})")
    b, d = bins.shape
    obs_dim = obs.shape[1]
    x = np.zeros((b, d, obs_dim + d * n_bins + d), obs.dtype)
    x[:, :, :obs_dim] = obs[:, None, :]
    rows = np.arange(b)
    for j in range(d):                       # dimension j's bin is visible to factors d > j
        x[rows, j + 1:, obs_dim + j * n_bins + bins[:, j]] = 1.0
    x[:, np.arange(d), obs_dim + d * n_bins + np.arange(d)] = 1.0
    return x


def autoregressive_nll(logits, bins) -> tuple[float, np.ndarray]:
    """``L = -1/B sum_i sum_d log softmax(logits_id)[b_id]``; ``(L, dL/dlogits)``.

    logits ``[B, D, n_bins]`` (factor d computed from teacher-forced inputs, see
    ``autoregressive_inputs``), bins ``[B, D]``. log p(b|s) = sum_d log p(b_d|s, b_<d) is the
    chain rule, so this is the exact NLL of the discretized action; dlogits =
    (softmax(logits) - onehot(b)) / B per factor.
    Lecture: CS224R "Generative models for policies" (discretize + autoregressive:
    p(a_{t,1}), p(a_{t,2} | a_hat_{t,1}), p(a_{t,3} | a_hat_{t,1:2}), ...).
    """
    logits = _batch(logits, "logits", 3)
    bins = np.asarray(bins)
    if bins.shape != logits.shape[:2]:
        raise ValueError(f"bins must have shape {logits.shape[:2]}, got {bins.shape}")
    b = logits.shape[0]
    return _nll(Categorical, (logits,), bins, np.full(bins.shape, -1.0 / b))


# ----- diffusion ------------------------------------------------------------------------------

def cosine_beta_schedule(n_steps: int, s: float = 0.008, max_beta: float = 0.999) -> np.ndarray:
    """betas ``[K]`` (beta_1..beta_K) of the cosine schedule (module docstring), float64."""
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
        raise ValueError(f"n_steps must be a positive integer, got {n_steps!r}")
    t = np.arange(n_steps + 1) / n_steps
    f = np.cos((t + s) / (1.0 + s) * math.pi / 2.0) ** 2
    abar = f / f[0]
    return np.minimum(1.0 - abar[1:] / abar[:-1], max_beta)


def linear_beta_schedule(n_steps: int, beta_1: float = 1e-4, beta_k: float = 0.02) -> np.ndarray:
    """betas ``[K]`` linear from beta_1 to beta_K (Ho et al. 2020 use K = 1000, 1e-4 .. 0.02)."""
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
        raise ValueError(f"n_steps must be a positive integer, got {n_steps!r}")
    if not 0.0 < beta_1 <= beta_k < 1.0:
        raise ValueError(f"need 0 < beta_1 <= beta_k < 1, got {beta_1}, {beta_k}")
    return np.linspace(beta_1, beta_k, n_steps)


def _betas(betas) -> np.ndarray:
    betas = as_float(betas, "betas", np.float64)
    if betas.ndim != 1 or betas.size == 0 or np.any(betas <= 0.0) or np.any(betas >= 1.0):
        raise ValueError("betas must be a non-empty [K] array with every beta_t in (0, 1)")
    return betas


def alpha_bars(betas) -> np.ndarray:
    """``abar_t = prod_{j<=t} (1 - beta_j)``, ``[K]`` (index t-1 holds abar_t)."""
    return np.cumprod(1.0 - _betas(betas))


def _steps(t, k: int, b: int) -> np.ndarray:
    t = np.asarray(t)
    if t.dtype.kind not in "iu" or t.shape != (b,):
        raise ValueError(f"t must be [B] integers (B = {b}), got {t.shape} {t.dtype}")
    if t.size and (t.min() < 1 or t.max() > k):
        raise ValueError(f"t must lie in [1, {k}] (K = len(betas))")
    return t


def q_sample(x0, t, eps, betas) -> np.ndarray:
    """The closed form ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps`` ~ q(x_t | x_0).

    x0, eps ``[B, D]``; t ``[B]`` integers in [1, K]; betas ``[K]``. Returns ``[B, D]``.
    """
    x0 = _batch(x0, "x0", 2)
    eps = _batch(eps, "eps", 2)
    _same("x0", x0, eps=eps)
    abar = alpha_bars(betas)
    t = _steps(t, abar.size, x0.shape[0])
    a = abar[t - 1][:, None]
    return np.sqrt(a) * x0 + np.sqrt(1.0 - a) * eps


def q_step(x_prev, t, z, betas) -> np.ndarray:
    """One forward-chain step ``x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) z``, z ~ N(0, I).

    x_prev, z ``[B, D]``; t ``[B]`` in [1, K]. Iterating it from x_0 gives q(x_t | x_0).
    """
    x_prev = _batch(x_prev, "x_prev", 2)
    z = _batch(z, "z", 2)
    _same("x_prev", x_prev, z=z)
    betas = _betas(betas)
    t = _steps(t, betas.size, x_prev.shape[0])
    beta = betas[t - 1][:, None]
    return np.sqrt(1.0 - beta) * x_prev + np.sqrt(beta) * z


def timestep_embedding(t, n_steps: int, dim: int) -> np.ndarray:
    """Sinusoidal embedding ``[B, dim]`` of diffusion steps t ``[B]`` (Vaswani et al. 2017):
    ``[sin(u f_0), ..., sin(u f_{h-1}), cos(u f_0), ..., cos(u f_{h-1})]`` with u = t / K,
    h = dim / 2 and f_i = (pi/2) K^(i / (h - 1)): from a quarter turn over the whole chain
    (u in [0, 1]) up to a quarter turn per step, so every step gets a distinct code."""
    if dim < 2 or dim % 2:
        raise ValueError(f"dim must be an even integer >= 2, got {dim!r}")
    t = np.asarray(t)
    u = t.astype(np.float64)[:, None] / n_steps
    h = dim // 2
    freqs = 0.5 * np.pi * float(n_steps) ** (np.arange(h) / max(h - 1, 1))
    return np.concatenate([np.sin(u * freqs), np.cos(u * freqs)], axis=1)


def diffusion_eps_loss(eps_pred, eps) -> tuple[float, np.ndarray]:
    """The DDPM training loss ``L = 1/B sum_i ||eps_i - eps_theta_i||^2``; ``(L, dL/deps_theta)``.

    eps_pred (eps_theta(s, x_t, t)) and eps ``[B, D]``; dL/deps_theta = 2 (eps_theta - eps)/B.
    Ho et al. 2020, Algorithm 1 (the "simple" objective).
    """
    return _squared_error(eps_pred, eps, "eps_pred", "eps")


def ddpm_reverse_step(x_t, t: int, eps_pred, z, betas, clip: float | None = 1.0) -> np.ndarray:
    """One ancestral step x_t -> x_{t-1} of the reverse process (Ho et al. 2020, Eq. 6-7).

        x0_hat  = (x_t - sqrt(1 - abar_t) eps_theta) / sqrt(abar_t), clipped to [-clip, clip]
        mean    = sqrt(abar_{t-1}) beta_t / (1 - abar_t) x0_hat
                  + sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t) x_t
        x_{t-1} = mean + sqrt(beta_tilde_t) z,
                  beta_tilde_t = (1 - abar_{t-1}) beta_t / (1 - abar_t)

    with abar_0 = 1 (the last step t = 1 adds no noise). Without clipping, the mean equals
    (x_t - beta_t / sqrt(1 - abar_t) eps_theta) / sqrt(alpha_t); clipping x0_hat to the
    (scaled) action range is the usual safeguard for bounded data. x_t, eps_pred, z ``[B, D]``;
    t an int in [1, K].
    """
    x_t = _batch(x_t, "x_t", 2)
    eps_pred = _batch(eps_pred, "eps_pred", 2)
    z = _batch(z, "z", 2)
    _same("x_t", x_t, eps_pred=eps_pred, z=z)
    betas = _betas(betas)
    t = int(t)
    if not 1 <= t <= betas.size:
        raise ValueError(f"t must lie in [1, {betas.size}], got {t}")
    abar = np.concatenate([[1.0], np.cumprod(1.0 - betas)])
    a_t, a_prev, beta = abar[t], abar[t - 1], betas[t - 1]
    x0 = (x_t - math.sqrt(1.0 - a_t) * eps_pred) / math.sqrt(a_t)
    if clip is not None:
        x0 = np.clip(x0, -clip, clip)
    mean = (math.sqrt(a_prev) * beta / (1.0 - a_t)) * x0 \
        + (math.sqrt(1.0 - beta) * (1.0 - a_prev) / (1.0 - a_t)) * x_t
    var = (1.0 - a_prev) * beta / (1.0 - a_t)
    return mean + math.sqrt(var) * z
