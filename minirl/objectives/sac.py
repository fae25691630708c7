"""Soft Actor-Critic: soft Q targets, critic loss, actor loss and temperature loss.

With a replay batch (s_i, a_i, r_i, s'_i, terminated_i), K critics Q_j (targets Q'_j), a
tanh-squashed Gaussian actor pi_phi and the temperature alpha:

    target     y_i = r_i + gamma (1 - terminated_i)
                         * (min_{j in S} Q'_j(s'_i, a'_i) - alpha log pi(a'_i|s'_i)),
               a'_i ~ pi_phi(.|s'_i)  (the CURRENT policy, not the buffer's action)
    critics    L_Q(theta) = sum_j (1/B) sum_i (Q_j(s_i, a_i) - y_i)^2
    actor      L_pi(phi) = (1/B) sum_i [alpha log pi(a~_i|s_i) - min_j Q_j(s_i, a~_i)],
               a~_i = offset + scale tanh(mu_phi(s_i) + sigma_phi(s_i) eps_i)   (reparameterized)
    alpha      L_alpha(log alpha) = -(1/B) sum_i log alpha (log pi(a~_i|s_i) + H_target)

S is every critic (twin critics: K = 2) or a random subset of M critics (REDQ-style ensembles).
Units: the functions below take the actor's box [low, high]; ``minirl.algos.sac.SAC`` passes
the unit box [-1, 1] (Stable-Baselines3's convention: the env's box is an affine map applied
outside), so its log pi is the density of the squashed action in [-1, 1] and H_target = -dim(A)
does not depend on the env's action units. With another box, log pi is the density in that
box's units, lower by sum_d log scale_d (``TanhGaussian.log_prob_from_pre_tanh``).
A *truncated* transition keeps the bootstrap term: s'_i is the true final observation, so
only ``terminated`` is in the target. alpha = 0 is the lecture's "no entropy term" variant.

The actor's gradient flows through the reparameterized sample into the critics' *input*:

    dL/da~_i = -(1/B) dQ_{j*(i)}/da (s_i, a~_i)     (j* = the argmin critic of sample i)
    dL/dlogp_i = alpha / B
    (dmean, dlog_std) = TanhGaussian.rsample_backward(eps, dL/da~, dL/dlogp)
    dL/dphi = actor MLP backward of (dmean, dlog_std * [log_std inside its clamp])

where dQ/da is the critic MLP's backward w.r.t. its input [s, a], action columns.

The K critics run as one ensemble: ``ensemble_forward`` / ``ensemble_backward`` evaluate them
on a shared input with one stacked product ``np.matmul([K, B, in], [K, in, out])`` per layer
(the same products, bit for bit, as K separate ``MLP`` calls, in one BLAS call each).

The pure loss functions (``soft_q_targets``, ``critic_loss``, ``actor_loss``,
``temperature_loss``) return ``(value, gradient w.r.t. what the network emitted)``; the
``*_gradient`` functions compose them with the networks (``minirl.nn.MLP``) and return
gradients w.r.t. flat parameter vectors, so one finite-difference test checks each chain.

Lecture: Stanford CS224R "Off-Policy Actor-Critic Methods" (version 2: replay buffers, fitting
Q(s, a) with next actions from the current policy, the reparameterization trick);
"Critic Ensembling" (min over an ensemble); "Actor Critic: SAC, Algorithm 1: Soft Actor-Critic
(no entropy term)" (twin critics, min target, Polyak targets).
Papers: Haarnoja, Zhou, Abbeel & Levine 2018, "Soft Actor-Critic" (arXiv:1801.01290);
Haarnoja et al. 2018, "Soft Actor-Critic Algorithms and Applications" (arXiv:1812.05905,
learned temperature); Fujimoto et al. 2018 (TD3, clipped double Q, arXiv:1802.09477);
Chen et al. 2021 (REDQ, min over a random subset, arXiv:2101.05982).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from kernels._validate import as_bool, as_float, result_dtype, same_shape
from minirl.distributions import TanhGaussian
from minirl.nn import MLP, Linear, Workspace
from minirl.nn.layers import _ones  # the cached read-only ones vector of the bias gradient
from minirl.nn.losses import mean_f64, squared_error
from minirl.objectives.q_learning import ensemble_mean

__all__ = [
    "LOG_STD_MIN", "LOG_STD_MAX", "critic_subset", "soft_q_targets", "critic_loss",
    "actor_loss", "temperature_loss", "policy_head", "q_values", "sample_actions",
    "target_values", "critic_gradient", "actor_gradient", "input_gradient",
    "EnsembleWorkspace", "ensemble_forward", "ensemble_backward", "colored_noise",
]

#: The actor's log-std is clamped to [LOG_STD_MIN, LOG_STD_MAX] (Stable-Baselines3's range):
#: sigma in [2e-9, 7.4]; outside the clamp the log-std output gets no gradient.
LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0

ACTOR_Q_REDUCTIONS = ("min", "mean")


# ----- pure losses --------------------------------------------------------------------------

def critic_subset(n_critics: int, subset_size: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``subset_size`` distinct critics out of ``n_critics``, drawn from ``rng``.

    subset_size == n_critics returns ``arange(n_critics)`` without drawing (twin critics).
    Lecture: CS224R "Critic Ensembling". Paper: Chen et al. 2021 (REDQ), arXiv:2101.05982.
    """
    if not 1 <= subset_size <= n_critics:
        raise ValueError(f"subset_size must be in [1, n_critics={n_critics}], got {subset_size}")
    if subset_size == n_critics:
        return np.arange(n_critics)
    return np.sort(rng.choice(n_critics, size=subset_size, replace=False))


def soft_q_targets(rewards, terminated, next_q, next_logp, gamma: float, alpha: float):
    """Soft Bellman targets ``y = r + gamma (1 - terminated) (min_j next_q_j - alpha next_logp)``.

    rewards [B]; terminated [B] bool; next_q [K, B] = Q'_j(s', a') of the critics to take the
    min over (pass the chosen subset's rows); next_logp [B] = log pi(a'|s'), a' ~ pi(.|s').
    Truncation is not an argument: a truncated transition bootstraps like any other, from the
    true final observation s'. Returns y [B] (a stop-gradient target).
    Lecture: CS224R "Off-Policy Actor-Critic Methods" (y_i = r_i + gamma Q(s'_i, a'_i), a'_i
    from the current policy); SAC pseudocode "y_i <- r_i + gamma min_{j=1,2} Q_theta'_j".
    Paper: Haarnoja et al. 2018, eq. (3) with the soft value V(s') = E[Q - alpha log pi].
    Unbiased: no; a single-sample estimate of the soft Bellman backup, biased low by the min
    (deliberately: it counters the overestimation of the max/argmax in fitted Q).
    """
    rewards = as_float(rewards, "rewards")
    next_logp = as_float(next_logp, "next_logp")
    next_q = as_float(next_q, "next_q")
    terminated = as_bool(terminated, "terminated")
    if rewards.ndim != 1:
        raise ValueError(f"rewards must have shape [B], got {rewards.shape}")
    same_shape("rewards", rewards, terminated=terminated, next_logp=next_logp)
    if next_q.ndim != 2 or next_q.shape[1] != rewards.shape[0] or next_q.shape[0] < 1:
        raise ValueError(f"next_q must have shape [K, {rewards.shape[0]}], got {next_q.shape}")
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    if not alpha >= 0.0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    dtype = result_dtype(rewards, next_q, next_logp)
    soft_v = next_q.min(axis=0) - alpha * next_logp
    return (rewards + gamma * np.where(terminated, 0.0, soft_v)).astype(dtype, copy=False)


def critic_loss(q, targets, weights=None):
    """``L = sum_j (1/B) sum_i w_i (q_ji - y_i)^2`` and ``dL/dq = 2 w_i (q_ji - y_i) / B``.

    q [K, B] = Q_j(s_i, a_i); targets [B] (no gradient); weights [B] (optional importance
    weights from prioritized replay). Each critic regresses on the same target, so the sum
    over j leaves every critic its own mean-squared error. Returns ``(loss, dq [K, B])``.
    Extremes: the loss is finite whenever the true value fits float64 (float32 q and y of
    +-2e38, whose difference overflows float32, included); an element of dq whose true value
    is beyond q's largest float is +-inf (IEEE rounding: the critic's optimizer then raises
    ``NonFiniteGradientError``), the others are right (``minirl.nn.losses.squared_error``).
    Lecture: CS224R SAC pseudocode "theta_j <- theta_j - lambda_Q grad 1/N sum_i [Q_j - y_i]^2".
    """
    q = as_float(q, "q")
    targets = as_float(targets, "targets")
    if q.ndim != 2 or targets.shape != (q.shape[1],):
        raise ValueError(f"q must be [K, B] and targets [B], got {q.shape} and {targets.shape}")
    B = max(q.shape[1], 1)
    w = None
    if weights is not None:
        w = as_float(weights, "weights").astype(q.dtype, copy=False)
        if w.shape != targets.shape:
            raise ValueError(f"weights must have shape {targets.shape}, got {w.shape}")
        w = np.broadcast_to(w, q.shape)
    # (value in float64 and gradient right wherever it fits q's dtype, also for q - y
    # beyond float32; ``squared_error``)
    return squared_error(q, np.broadcast_to(targets.astype(q.dtype, copy=False), q.shape), B, w)


def actor_loss(logp, q, alpha: float, reduction: str = "min"):
    """``L = (1/B) sum_i [alpha logp_i - Q_i]`` with Q_i = min_j q_ji (or the mean over j).

    logp [B] = log pi(a~_i|s_i) at the reparameterized sample; q [K, B] = Q_j(s_i, a~_i).
    Returns ``(loss, dlogp [B], dq [K, B])``: dlogp = alpha / B; for ``"min"``
    dq_ji = -1/B at the per-sample argmin critic (the first on ties) and 0 elsewhere;
    for ``"mean"`` (REDQ's actor) dq = -1/(K B).
    Lecture: CS224R SAC pseudocode "phi <- phi + lambda_pi grad 1/N sum_i Q(s_i, pi_phi(s_i))"
    (alpha = 0 and K = 1 give it exactly); "Off-Policy Actor-Critic Methods" (sample
    a~ from the current policy, reparameterization trick). Paper: Haarnoja et al. 2018, eq. (7).
    Unbiased: for one eps per state, the pathwise gradient is unbiased for the gradient of
    E_eps[L] with the critics held fixed.
    """
    logp = as_float(logp, "logp")
    q = as_float(q, "q")
    if logp.ndim != 1 or q.ndim != 2 or q.shape[1] != logp.shape[0] or q.shape[0] < 1:
        raise ValueError(f"logp must be [B] and q [K, B], got {logp.shape} and {q.shape}")
    if reduction not in ACTOR_Q_REDUCTIONS:
        raise ValueError(f"reduction must be one of {ACTOR_Q_REDUCTIONS}, got {reduction!r}")
    if not alpha >= 0.0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    K, B = q.shape
    dtype = result_dtype(logp, q)
    if reduction == "min":
        j = np.argmin(q, axis=0)                       # [B]
        q_red = q[j, np.arange(B)]
        dq = np.zeros((K, B), dtype)
        dq[j, np.arange(B)] = -1.0 / B
    else:
        q_red = ensemble_mean(q)   # (float32 heads near the maximum: no overflow)
        dq = np.full((K, B), -1.0 / (K * B), dtype)
    with np.errstate(over="ignore"):  # alpha logp beyond float64: +-inf, the truth
        loss = mean_f64(alpha * logp.astype(np.float64) - q_red, B)
    return loss, np.full(B, alpha / B, dtype), dq


def temperature_loss(log_alpha: float, logp, target_entropy: float):
    """``L = -log_alpha * mean(logp + H_target)``; returns ``(loss, dL/dlog_alpha)``.

    Gradient descent raises alpha when the policy's entropy estimate -mean(logp) is below
    ``target_entropy`` (default -dim(A)) and lowers it when above. The entropy target is in
    the units of logp: SAC's logp is the density of the squashed action in [-1, 1], so -dim(A)
    is Stable-Baselines3's target for any action box. The loss is written in
    log alpha (as Stable-Baselines3 and CleanRL do); the paper's alpha-form
    -alpha mean(logp + H) has the same sign of gradient, scaled by alpha.
    logp [B] at the actor's reparameterized samples (a constant here).
    Paper: Haarnoja et al. 2018b, "Soft Actor-Critic Algorithms and Applications",
    eq. (18), arXiv:1812.05905.
    """
    logp = as_float(logp, "logp")
    if logp.ndim != 1 or logp.size == 0:
        raise ValueError(f"logp must have shape [B] with B >= 1, got {logp.shape}")
    c = mean_f64(logp) + float(target_entropy)
    return -float(log_alpha) * c, -c


def colored_noise(beta: float, shape: tuple, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise with power spectrum S(f) ~ 1/f^beta along the last axis, unit variance.

    shape ``(..., T)``: independent sequences of length T (e.g. ``[N, D, T]``: one per env
    and action dimension). beta = 0 is white noise, 1 pink, 2 red (Brownian-like: strongly
    correlated in time, like an Ornstein-Uhlenbeck process far below its cutoff).
    Algorithm (Timmer & Koenig 1995, as in Eberhard et al.'s reference code): draw the real
    and imaginary parts of every positive frequency f_k = k/T as N(0, f_k^(-beta/2)) (f_0
    replaced by 1/T; the imaginary parts at f = 0 and, for even T, at f = 1/2 are 0 and their
    real parts scaled by sqrt 2), inverse real FFT, divide by the theoretical standard
    deviation of a sample, so every sample is N(0, 1) marginally (the sequence is stationary).
    Paper: Eberhard, Hollenstein, Pinneri & Martius 2023, "Pink Noise Is All You Need:
    Colored Noise Exploration in Deep Reinforcement Learning" (ICLR 2023).
    """
    if not (isinstance(beta, (int, float, np.integer, np.floating)) and 0.0 <= beta <= 10.0):
        raise ValueError(f"beta must be a number in [0, 10], got {beta!r}")
    shape = tuple(int(n) for n in shape)
    T = shape[-1] if shape else 0
    if T < 2 or any(n < 1 for n in shape):
        raise ValueError(f"shape must end in a sequence length >= 2, got {shape}")
    f = np.fft.rfftfreq(T)
    f[0] = 1.0 / T                                   # f_min: the lowest resolved frequency
    w = f ** (-beta / 2.0)                           # amplitude per frequency
    s_r = rng.standard_normal((*shape[:-1], len(f))) * w
    s_i = rng.standard_normal((*shape[:-1], len(f))) * w
    s_i[..., 0] = 0.0
    s_r[..., 0] *= np.sqrt(2.0)
    if T % 2 == 0:                                   # the Nyquist frequency is real
        s_i[..., -1] = 0.0
        s_r[..., -1] *= np.sqrt(2.0)
    # Var(y_t) T^2 = 2 w_0^2 + 4 sum_{0<k<T/2} w_k^2 (+ 2 w_{T/2}^2 for even T): exactly 1
    # after the division (the reference code leaves out the f = 0 term: variance 1.09 for pink).
    var = 2.0 * w[0] ** 2 + 4.0 * np.sum(w[1:] ** 2)
    if T % 2 == 0:
        var -= 2.0 * w[-1] ** 2
    sigma = np.sqrt(var) / T
    return np.fft.irfft(s_r + 1j * s_i, n=T, axis=-1) / sigma


# ----- networks: policy head, Q-values, targets and the two gradients -------------------------

def policy_head(out: np.ndarray, low, high) -> TanhGaussian:
    """The actor's output ``[B, 2D]`` = [mean | log_std] -> TanhGaussian on the box [low, high].

    log_std is clamped to [LOG_STD_MIN, LOG_STD_MAX] (``actor_gradient`` zeroes its gradient
    outside the clamp, the derivative of the clip).
    """
    D = out.shape[-1] // 2
    log_std = np.clip(out[:, D:], LOG_STD_MIN, LOG_STD_MAX)
    return TanhGaussian(out[:, :D], log_std, low, high)


def _inputs(obs: np.ndarray, actions: np.ndarray, dtype) -> np.ndarray:
    """The critic's input [s, a], ``[B, obs_dim + D]``."""
    return np.concatenate([np.asarray(obs, dtype), np.asarray(actions, dtype)], axis=1)


class EnsembleCache(NamedTuple):
    """What ``ensemble_backward`` / ``input_gradient`` need from one ``ensemble_forward``."""

    layer_caches: list          # per layer: a Linear's input, an activation's output [K, B, .]
    n_nets: int                 # K
    batch: int                  # B
    workspace: "EnsembleWorkspace | None"
    generation: int             # the workspace's generation at forward time


class EnsembleWorkspace:
    """Preallocated ``[K, B, width]`` buffers for ``ensemble_forward`` / ``ensemble_backward``,
    keyed by (K, B); a forward with it invalidates the caches of its earlier forwards of
    the same (K, B) (a backward of such a cache raises ``RuntimeError``). Speed only."""

    def __init__(self, net: MLP):
        self.net, self._buffers, self._generation = net, {}, {}

    def buffers(self, K: int, B: int) -> tuple[list, list]:
        key = (K, B)
        if key not in self._buffers:
            fwd, bwd, dim = [], [], self.net.in_dim
            for layer in self.net.layers:
                out_dim = layer.output_dim(dim)
                fwd.append(np.empty((K, B, out_dim), self.net.dtype) if layer.has_params else None)
                bwd.append(np.empty((K, B, dim), self.net.dtype))
                dim = out_dim
            self._buffers[key] = (fwd, bwd)
        return self._buffers[key]

    def _advance(self, K: int, B: int) -> int:
        self._generation[K, B] = self._generation.get((K, B), 0) + 1
        return self._generation[K, B]


def _stacked_views(net: MLP, params: np.ndarray) -> list[dict[str, np.ndarray]]:
    """Per layer ``{name: [K, *shape] view}`` of ``params [K, n]`` (rows: the K networks'
    flat vectors in ``net``'s layout; each matrix stays contiguous, so BLAS reads it in place)."""
    if params.ndim != 2 or params.shape[1] != net.n_params or params.dtype != net.dtype \
            or params.strides[1] != params.itemsize:
        raise ValueError(f"params must be [K, {net.n_params}] {net.dtype} with contiguous rows, "
                         f"got {params.shape} {params.dtype}")
    K, out = params.shape[0], []
    for slots in net._slots:
        out.append({name: params[:, a:b].reshape(K, *shape) for name, a, b, shape in slots})
    return out


def ensemble_forward(net: MLP, params: np.ndarray, x: np.ndarray,
                     workspace: EnsembleWorkspace | None = None):
    """``y [K, B, out]`` of K networks of one architecture on ONE shared input ``x [B, in]``.

    Each Linear layer is one stacked product ``np.matmul([K, B, in], [K, in, out])`` (the
    first one broadcasts x), so K critics cost one call per layer instead of K; every
    matrix product and element-wise operation is the one ``net.forward`` does per network.
    Returns ``(y, EnsembleCache)``.
    """
    x = np.asarray(x, net.dtype)
    if x.ndim != 2 or x.shape[1] != net.in_dim:
        raise ValueError(f"x must have shape [B, {net.in_dim}], got {x.shape}")
    views = _stacked_views(net, params)
    K, B = params.shape[0], x.shape[0]
    if workspace is not None:
        outs, generation = workspace.buffers(K, B)[0], workspace._advance(K, B)
    else:
        outs, generation = None, 0
    h, caches = x, []
    for i, layer in enumerate(net.layers):
        if isinstance(layer, Linear):
            v = views[i]
            y = np.matmul(h, v["weight"], out=None if outs is None else outs[i])
            y += v["bias"][:, None, :]
            caches.append(h)
            h = y
        else:
            h, cache = layer.forward({}, h, out=h)      # in place on the Linear's output
            caches.append(cache)
    return h, EnsembleCache(caches, K, B, workspace, generation)


def _check_cache(cache: EnsembleCache) -> None:
    ws = cache.workspace
    if ws is not None and ws._generation.get((cache.n_nets, cache.batch)) != cache.generation:
        raise RuntimeError("the cache's workspace buffers were overwritten by a later forward")


def ensemble_backward(net: MLP, params: np.ndarray, cache: EnsembleCache, dy: np.ndarray,
                      out: np.ndarray | None = None) -> np.ndarray:
    """``dparams [K, n]`` of K networks from ``dy [K, B, out]`` (no input gradient).

    Per network: dW = h^T dy, db = sum_B dy, dh = dy W^T through the activations' backward,
    as ``net.backward(..., need_dx=False)``, with one stacked product per layer.
    """
    _check_cache(cache)
    K, B = params.shape[0], cache.batch
    views = _stacked_views(net, params)
    grad = np.empty_like(params) if out is None else out
    gviews = _stacked_views(net, grad)
    dxs = None if cache.workspace is None else cache.workspace.buffers(K, B)[1]
    g = np.asarray(dy, net.dtype)
    first = next(i for i, l in enumerate(net.layers) if l.has_params)
    ones = _ones(B, net.dtype)
    owned = False                                    # g is ours to overwrite (not dy)
    for i in range(len(net.layers) - 1, first - 1, -1):
        layer, h = net.layers[i], cache.layer_caches[i]
        if isinstance(layer, Linear):
            gv = gviews[i]
            hT = h.T if h.ndim == 2 else h.transpose(0, 2, 1)
            np.matmul(hT, g, out=gv["weight"])                        # [K, in, out]
            np.matmul(ones, g, out=gv["bias"])                        # [K, out]
            if i == first:
                break
            wT = views[i]["weight"].transpose(0, 2, 1)                # [K, out, in]
            dx = None if dxs is None else dxs[i]
            if g.shape[2] == 1:      # a Q head: an outer product (matmul's k=1 path is slow)
                g = np.multiply(g, wT, out=dx)
                g += 0.0             # as Linear.backward: -0.0 products become +0.0
            else:
                g = np.matmul(g, wT, out=dx)
            owned = True
        else:
            dx = dxs[i] if dxs is not None else (g if owned and layer.backward_in_place else None)
            _, g = layer.backward({}, h, g, dx_out=dx)
            owned = True
    return grad




def q_values(critic: MLP, params: np.ndarray, obs, actions,
             workspace: EnsembleWorkspace | None = None):
    """``q [K, B]`` = Q_j(s, a) for the K rows of ``params [K, n]``, and the forward cache.

    All K critics in one ``ensemble_forward`` (one stacked product per layer).
    ``workspace``: optional ``EnsembleWorkspace(critic)``.
    """
    y, cache = ensemble_forward(critic, params, _inputs(obs, actions, critic.dtype), workspace)
    return y[:, :, 0], cache


def sample_actions(actor: MLP, params: np.ndarray, obs, low, high, rng: np.random.Generator,
                   workspace: Workspace | None = None):
    """Reparameterized actions of the actor: ``(a [B, D], logp [B], dist, eps, out, cache)``.

    a = offset + scale tanh(mean + std eps), eps ~ N(0, I) from ``rng``;
    logp = log pi(a|s) including the tanh and box-rescaling log-determinants (the latter is
    0 for the unit box low = -1, high = 1 that SAC uses).
    """
    out, cache = actor.forward(params, obs, workspace)
    dist = policy_head(out, low, high)
    a, u, eps = dist.rsample(rng)
    return a, dist.log_prob_from_pre_tanh(u), dist, eps, out, cache


def target_values(actor: MLP, actor_params, critic: MLP, target_params, batch, gamma: float,
                  alpha: float, low, high, rng: np.random.Generator, subset=None,
                  workspaces=None) -> np.ndarray:
    """Soft targets y [B] for a replay batch (``next_obs, rewards, terminated`` fields).

    a' ~ pi(.|s') from the current actor; next_q from the target critics ``target_params
    [K, n]`` (rows ``subset`` only, if given); then ``soft_q_targets``.
    ``workspaces``: optional ``(actor Workspace, critics' EnsembleWorkspace)``.
    """
    ws_a, ws_q = (None, None) if workspaces is None else workspaces
    a2, logp2, *_ = sample_actions(actor, actor_params, batch.next_obs, low, high, rng, ws_a)
    rows = target_params if subset is None or len(subset) == len(target_params) \
        else target_params[subset]
    next_q, _ = q_values(critic, rows, batch.next_obs, a2, ws_q)
    return soft_q_targets(batch.rewards, batch.terminated, next_q, logp2, gamma, alpha)


def input_gradient(net: MLP, params: np.ndarray, cache: EnsembleCache, j: int, dy,
                   rows: np.ndarray | None = None) -> np.ndarray:
    """``dL/dx`` of network ``j`` of one ``ensemble_forward(net, params, x)``, from ``dy``.

    The same products as ``net.backward`` minus every weight-gradient product (for a
    256-256 critic, one of its three 256^3 matrix products): the actor loss needs the
    critics' gradient w.r.t. their input action, never w.r.t. their weights.
        Linear: dx = dy @ W^T;  activations: their own backward.
    ``rows`` (int indices): only these samples' input gradients, from ``dy`` of those rows
    (the others are zero; rows are independent, so this is the same numbers for them).
    Shapes: params [K, n]; x ``[B, in_dim]``; dy ``[B, out_dim]`` (``[len(rows), out_dim]``
    with rows) -> dx like dy's rows, ``[..., in_dim]``.
    """
    _check_cache(cache)
    views = net._layer_params(np.ascontiguousarray(params[j]))
    n = cache.batch if rows is None else len(rows)
    g = np.asarray(dy, net.dtype).reshape(n, net.out_dim)
    for i in range(len(net.layers) - 1, -1, -1):
        layer = net.layers[i]
        if isinstance(layer, Linear):
            w = views[i]["weight"]
            # A one-column dy (the Q head) is an outer product; matmul's k=1 path is ~4x slower.
            g = np.multiply(g, w[:, 0]) if g.shape[1] == 1 else g @ w.T
        else:
            layer_cache = cache.layer_caches[i]     # the activation's output [K, B, width]
            layer_cache = layer_cache[j] if rows is None else layer_cache[j].take(rows, axis=0)
            _, g = layer.backward({}, layer_cache, g)
    return g


def critic_gradient(critic: MLP, params: np.ndarray, obs, actions, targets, weights=None,
                    workspace: EnsembleWorkspace | None = None, out: np.ndarray | None = None):
    """``(loss, grad [K, n])`` of ``critic_loss`` w.r.t. every critic's flat parameters.

    params [K, n]; obs [B, obs_dim]; actions [B, D] (the buffer's actions); targets [B].
    ``out``: optional [K, n] destination for the gradient.
    """
    q, cache = q_values(critic, params, obs, actions, workspace)
    loss, dq = critic_loss(q, targets, weights)
    return loss, ensemble_backward(critic, params, cache, dq[:, :, None], out=out)


def actor_gradient(actor: MLP, actor_params: np.ndarray, critic: MLP, critic_params: np.ndarray,
                   obs, alpha: float, low, high, rng: np.random.Generator,
                   reduction: str = "min", workspaces=None):
    """``(loss, dphi [n_actor], logp [B])`` of the actor loss, through the critics' input.

    Samples a~ = offset + scale tanh(mean + std eps) (eps from ``rng``), evaluates
    ``actor_loss(logp, Q_j(s, a~))`` with critics ``critic_params [K, n]`` held fixed, and
    backpropagates: dQ_j/da from each critic's input gradient (action columns), then
    ``rsample_backward`` (pathwise: tanh, rescale and the log-det of logp), then the actor MLP.
    ``workspaces``: optional ``(actor Workspace, critics' EnsembleWorkspace)``.
    """
    ws_a, ws_q = (None, None) if workspaces is None else workspaces
    a, logp, dist, eps, out, cache = sample_actions(actor, actor_params, obs, low, high, rng, ws_a)
    q, qcache = q_values(critic, critic_params, obs, a, ws_q)
    loss, dlogp, dq = actor_loss(logp, q, alpha, reduction)
    obs_dim, D = critic.in_dim - a.shape[1], a.shape[1]
    da = np.zeros(a.shape, critic.dtype)
    if reduction == "min":
        # Sample i's loss depends on its argmin critic only: backpropagate each critic's rows
        # alone, B rows in total instead of K * B.
        for j in range(critic_params.shape[0]):
            rows = np.flatnonzero(dq[j])
            if rows.size:
                dx = input_gradient(critic, critic_params, qcache, j, dq[j, rows, None], rows)
                da[rows] = dx[:, obs_dim:]
    else:
        for j in range(critic_params.shape[0]):
            da += input_gradient(critic, critic_params, qcache, j, dq[j][:, None])[:, obs_dim:]
    dmean, dlog_std = dist.rsample_backward(eps, da, dlogp)
    # The clamp of log_std passes gradient only where it was not active.
    raw = out[:, D:]
    dlog_std *= (raw >= LOG_STD_MIN) & (raw <= LOG_STD_MAX)
    dout = np.concatenate([dmean, dlog_std], axis=1)
    dphi, _ = actor.backward(actor_params, cache, dout, need_dx=False)
    return loss, dphi, logp
