"""Gradient-free update rules: random search, cross-entropy method, evolution strategies, ARS.

Every rule acts on the flat parameter vector of a policy network (``theta [P]``; a linear
policy is the one-layer MLP) and only needs the *returns* of perturbed parameters, never a
gradient of the network:

| rule                       | update                                                            |
|----------------------------|-------------------------------------------------------------------|
| ``random_search_step``     | theta <- argmax over {theta, candidates} of the return            |
| ``cem_refit``              | mu, sigma <- mean, std of the top-p% elites (+ smoothing, noise)  |
| ``es_recombine``           | m <- sum_i w_i x_{i:lambda}, (mu, lambda) selection, log weights   |
| ``es_gradient``            | g = 1/(2 n sigma) sum_i (F_i^+ - F_i^-) eps_i  (antithetic)       |
| ``ars_update``             | theta <- theta + alpha/(b sigma_R) sum_{top b} (r_i^+ - r_i^-) d_i |

plus ``centered_ranks`` (fitness shaping) and ``es_gradient_one_sided`` (the plain
Gaussian-smoothing estimator, kept to show what antithetic sampling buys).

Gaussian smoothing (why ES/ARS estimate a gradient): for f_sigma(theta) = E_eps[f(theta +
sigma eps)], eps ~ N(0, I),  grad f_sigma(theta) = E[f(theta + sigma eps) eps] / sigma. For a
quadratic f, f_sigma = f + const, so the estimators below are unbiased for grad f itself.

Lecture: "Policy Gradients and Gradient-Free Optimization", slides "Random Search", "Cross
Entropy Method", "Evolutionary Strategies", "Augmented Random Search". Papers: Salimans, Ho,
Chen, Sidor & Sutskever (2017), "Evolution Strategies as a Scalable Alternative to RL",
arXiv:1703.03864; Mania, Guy & Recht (2018), "Simple random search provides a competitive
approach to RL", arXiv:1803.07055; Hansen (2016), "The CMA Evolution Strategy: A Tutorial",
arXiv:1604.00772 (recombination weights); de Boer, Kroese, Mannor & Rubinstein (2005), "A
Tutorial on the Cross-Entropy Method"; Szita & Lorincz (2006), "Learning Tetris Using the
Noisy Cross-Entropy Method" (extra noise).
"""
from __future__ import annotations

import math

import numpy as np
from scipy.stats import rankdata

from kernels._validate import as_float

__all__ = ["centered_ranks", "random_search_step", "cem_num_elites", "cem_refit",
           "recombination_weights", "es_recombine", "es_gradient", "es_gradient_one_sided",
           "ars_update"]


def _returns(x, name: str, n: int | None = None) -> np.ndarray:
    """Validated float64 ``[n]`` returns (finite, non-empty)."""
    r = as_float(x, name, dtype=np.float64)
    if r.ndim != 1 or r.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {r.shape}")
    if n is not None and r.shape[0] != n:
        raise ValueError(f"{name} has {r.shape[0]} entries, expected {n}")
    return r


def _matrix(x, name: str) -> np.ndarray:
    m = as_float(x, name, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array [n, P], got shape {m.shape}")
    return m


def _pow2_scale(*arrays) -> float:
    """A power of two c with max |x| <= 2 c over the arrays (1 if all are 0): dividing by it is
    exact (barring subnormals), so spreads and sums of huge or tiny values are computed
    scaled. (c = 2^frexp(max)[1], at most 2^1023.)"""
    m = max(float(np.max(np.abs(a))) if np.size(a) else 0.0 for a in arrays)
    return 1.0 if m == 0.0 else math.ldexp(1.0, min(math.frexp(m)[1], 1023))


def _spread_ok(x) -> np.ndarray:
    """Where a directly computed std is trusted: inside (1e-150, 1e150), so no square
    overflowed to inf or underflowed to 0 (a 0 is recomputed scaled: 0 again if the values
    are truly equal)."""
    x = np.asarray(x)
    with np.errstate(invalid="ignore"):
        return (x > 1e-150) & (x < 1e150)


def _positive(x, name: str) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float, np.floating, np.integer)) \
            or not math.isfinite(x) or x <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {x!r}")
    return float(x)


def _fraction(x, name: str, lo_open: bool = False) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float, np.floating, np.integer)) \
            or not (0.0 < x <= 1.0 if lo_open else 0.0 <= x <= 1.0):
        interval = "(0, 1]" if lo_open else "[0, 1]"
        raise ValueError(f"{name} must be in {interval}, got {x!r}")
    return float(x)


def centered_ranks(returns) -> np.ndarray:
    """Fitness shaping: returns ``[K]`` (any shape) -> centered ranks in [-0.5, 0.5], same shape.

        u_k = (rank(F_k) - 1) / (K - 1) - 1/2,   rank in 1..K (ties share their mean rank)

    Only the order of the returns matters, so the result is invariant to any strictly
    increasing transform of them (reward scale, offset, outliers), and it sums to zero (a
    built-in baseline). K = 1 gives 0. Raises ValueError for empty or non-finite returns.
    Source: Salimans et al. (2017), arXiv:1703.03864, sec. 2.2 and its code's
    ``compute_centered_ranks`` (which breaks ties by position; we average them, so equal
    returns always get equal weight).
    """
    r = as_float(returns, "returns", dtype=np.float64)
    if r.size == 0:
        raise ValueError("returns must not be empty")
    if r.size == 1:
        return np.zeros_like(r)
    ranks = rankdata(r.reshape(-1), method="average").reshape(r.shape)
    return (ranks - 1.0) / (r.size - 1) - 0.5


def random_search_step(theta, theta_return: float, candidates, returns):
    """Keep the best: ``(theta', return')`` over the incumbent and the scored candidates.

        k* = argmax_k F(candidate_k);  theta' = candidate_{k*} if F_{k*} > F(theta) else theta

    theta [P] with its return (re-measured this iteration, so one lucky episode cannot keep
    an incumbent forever), candidates [K, P] with returns [K]. Ties keep the incumbent, then
    the first candidate. Returns a new array (never a view of ``candidates``).
    Lecture: slides "Policy Gradients and Gradient-Free Optimization", "Random Search"
    (randomly generate samples, score each one, choose the best).
    """
    theta = as_float(theta, "theta", dtype=np.float64)
    candidates = _matrix(candidates, "candidates")
    if theta.ndim != 1 or candidates.shape[1] != theta.shape[0]:
        raise ValueError(f"candidates must be [K, {theta.shape}], got {candidates.shape}")
    returns = _returns(returns, "returns", candidates.shape[0])
    theta_return = float(_returns([theta_return], "theta_return")[0])
    k = int(np.argmax(returns))
    if returns[k] > theta_return:
        return candidates[k].copy(), float(returns[k])
    return theta.copy(), theta_return


def cem_num_elites(n: int, elite_frac: float) -> int:
    """Number of elites of a population of ``n``: ceil(elite_frac * n), at least 1."""
    return max(1, int(math.ceil(_fraction(elite_frac, "elite_frac", lo_open=True) * n - 1e-9)))


def cem_refit(samples, returns, elite_frac: float, mean_old=None, std_old=None,
              smoothing: float = 0.0, extra_noise: float = 0.0):
    """Cross-entropy refit of N(mu, diag sigma^2) to the elites: ``(mean [P], std [P])``.

        E      = the ceil(p n) samples with the highest returns   (top p%, ties: lower index)
        mu'    = a mu_old + (1 - a) mean(E)
        sigma' = sqrt(a sigma_old^2 + (1 - a) var(E) + Z)         (var with ddof=0)

    samples [n, P] ~ N(mu_old, diag sigma_old^2), returns [n]. ``smoothing`` a in [0, 1)
    (0 = the plain refit of the slide; de Boer et al. 2005) needs ``mean_old``/``std_old``
    [P]; ``extra_noise`` Z >= 0 is a variance added after the refit so sigma cannot collapse
    before the optimum is found (Szita & Lorincz 2006; 0 = off).
    Lecture: slides "Policy Gradients and Gradient-Free Optimization", "Cross Entropy
    Method" (select top p%, mu = E[Theta], sigma = sqrt(Var[Theta])).
    Raises ValueError naming a bad argument.
    """
    samples = _matrix(samples, "samples")
    n, p = samples.shape
    returns = _returns(returns, "returns", n)
    n_elite = cem_num_elites(n, elite_frac)
    if isinstance(smoothing, bool) or not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing!r}")
    if isinstance(extra_noise, bool) or not (0.0 <= extra_noise < math.inf):
        raise ValueError(f"extra_noise must be a finite number >= 0, got {extra_noise!r}")
    elites = samples[np.argsort(-returns, kind="stable")[:n_elite]]
    if smoothing > 0.0:
        if mean_old is None or std_old is None:
            raise ValueError("smoothing > 0 needs mean_old and std_old")
        mean_old = as_float(mean_old, "mean_old", dtype=np.float64)
        std_old = as_float(std_old, "std_old", dtype=np.float64)
        if mean_old.shape != (p,) or std_old.shape != (p,):
            raise ValueError(f"mean_old and std_old must have shape ({p},), got "
                             f"{mean_old.shape} and {std_old.shape}")

    def refit(x, m_old, s_old, z):
        mean, var = x.mean(axis=0), x.var(axis=0)
        if smoothing > 0.0:
            mean = smoothing * m_old + (1.0 - smoothing) * mean
            var = smoothing * s_old ** 2 + (1.0 - smoothing) * var
        return mean, np.sqrt(var + z)

    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        mean, std = refit(elites, mean_old, std_old, extra_noise)
        bad = ~np.isfinite(mean) | ~_spread_ok(std)
        # Sums/squares beyond float64 (or squares underflowing): in those columns everything
        # divided by a power of two c ~ its largest magnitude, then scaled back.
        for j in np.flatnonzero(bad):
            parts = [elites[:, j], [math.sqrt(extra_noise)]]
            if smoothing > 0.0:
                parts += [mean_old[j:j + 1], std_old[j:j + 1]]
            c = _pow2_scale(*parts)
            m_j, s_j = refit(elites[:, j:j + 1] / c,
                             None if smoothing == 0.0 else mean_old[j] / c,
                             None if smoothing == 0.0 else std_old[j] / c,
                             extra_noise / c / c)
            mean[j], std[j] = m_j[0] * c, s_j[0] * c
    return mean, std


def recombination_weights(mu: int) -> np.ndarray:
    """Log-rank weights of (mu/mu_W, lambda)-ES recombination, ``[mu]``, positive, sum 1.

        w_i = (ln(mu + 1/2) - ln i) / sum_j (ln(mu + 1/2) - ln j),   i = 1..mu (1 = best)

    Source: Hansen (2016), arXiv:1604.00772, eq. (49) restricted to the mu positive weights.
    """
    if isinstance(mu, bool) or not isinstance(mu, (int, np.integer)) or mu < 1:
        raise ValueError(f"mu must be a positive integer, got {mu!r}")
    w = math.log(mu + 0.5) - np.log(np.arange(1, mu + 1))
    return w / w.sum()


def es_recombine(offspring, returns, mu: int) -> np.ndarray:
    """(mu, lambda) selection with weighted recombination: the new parent ``m [P]``.

        m' = sum_{i=1}^{mu} w_i x_{i:lambda}

    x_{i:lambda} is the offspring with the i-th highest return (ties: lower index first),
    w = ``recombination_weights(mu)``. Comma selection: the old parent is discarded, only the
    lambda = K offspring [K, P] (with returns [K]) compete. mu must be in [1, K].
    Lecture: slides "Policy Gradients and Gradient-Free Optimization", "Evolutionary
    Strategies" (mutate each solution, evaluate, recombine high-performing policies). Source: Hansen (2016), arXiv:1604.00772.
    """
    offspring = _matrix(offspring, "offspring")
    returns = _returns(returns, "returns", offspring.shape[0])
    if isinstance(mu, bool) or not isinstance(mu, (int, np.integer)) \
            or not 1 <= mu <= offspring.shape[0]:
        raise ValueError(f"mu must be an integer in [1, {offspring.shape[0]}], got {mu!r}")
    best = np.argsort(-returns, kind="stable")[:mu]
    return recombination_weights(int(mu)) @ offspring[best]


def _antithetic(noise, returns_pos, returns_neg, sigma):
    noise = _matrix(noise, "noise")
    n = noise.shape[0]
    return (noise, _returns(returns_pos, "returns_pos", n), _returns(returns_neg, "returns_neg", n),
            _positive(sigma, "sigma"))


def es_gradient(noise, returns_pos, returns_neg, sigma: float) -> np.ndarray:
    """Antithetic Gaussian-smoothing gradient estimate ``g [P]`` of E[F(theta + sigma eps)].

        g = 1 / (2 n sigma) * sum_{i=1}^n (F_i^+ - F_i^-) eps_i
        F_i^+ = F(theta + sigma eps_i),  F_i^- = F(theta - sigma eps_i),  eps_i ~ N(0, I)

    noise [n, P] holds eps_i; returns_pos, returns_neg [n] hold F^+ and F^- (raw returns or,
    as in Salimans et al., ``centered_ranks`` of all 2n returns together).
    Unbiased: yes, for grad f_sigma with raw returns (for a quadratic f: grad f exactly, and
    F^+ - F^- = 2 sigma grad f . eps, so the even part of f adds no variance); with rank
    shaping it estimates the gradient of a shaped objective (same ascent directions, not the
    same magnitudes).
    Lecture: slides "Policy Gradients and Gradient-Free Optimization", "Evolutionary
    Strategies"; "Augmented Random Search" (antithetic perturbations).
    Paper: Salimans et al. (2017), arXiv:1703.03864, Algorithm 2 with mirrored sampling.
    """
    noise, rp, rn, sigma = _antithetic(noise, returns_pos, returns_neg, sigma)
    with np.errstate(over="ignore", invalid="ignore"):
        g = (rp - rn) @ noise / (2.0 * noise.shape[0] * sigma)
        if not np.isfinite(g).all():  # F+ - F- or the sum beyond float64: scaled by c
            c = _pow2_scale(rp, rn)
            g = ((rp / c - rn / c) @ noise / (2.0 * noise.shape[0] * sigma)) * c
    return g


def es_gradient_one_sided(noise, returns, sigma: float) -> np.ndarray:
    """Plain Gaussian-smoothing gradient estimate ``g [P]`` (no mirrored samples, no baseline).

        g = 1 / (n sigma) * sum_{i=1}^n F(theta + sigma eps_i) eps_i

    noise [n, P], returns [n]. Unbiased: yes, for grad f_sigma. Its variance includes the
    term F(theta)^2 / sigma^2 per direction, which the antithetic ``es_gradient`` cancels.
    Paper: Salimans et al. (2017), arXiv:1703.03864, Algorithm 1.
    """
    noise = _matrix(noise, "noise")
    returns = _returns(returns, "returns", noise.shape[0])
    sigma = _positive(sigma, "sigma")
    with np.errstate(over="ignore", invalid="ignore"):
        g = returns @ noise / (noise.shape[0] * sigma)
        if not np.isfinite(g).all():  # the sum beyond float64: scaled by c
            c = _pow2_scale(returns)
            g = ((returns / c) @ noise / (noise.shape[0] * sigma)) * c
    return g


def ars_update(theta, deltas, returns_pos, returns_neg, step_size: float,
               top_b: int | None = None):
    """One Augmented Random Search step: ``(theta' [P], sigma_R, top [b] indices)``.

        keep the b directions with the largest max(r_i^+, r_i^-)      (b = n: all, V1/V2)
        sigma_R = std of the 2b returns {r_i^+, r_i^-} of the kept directions
        theta'  = theta + alpha / (b sigma_R) * sum_{kept i} (r_i^+ - r_i^-) delta_i

    theta [P]; deltas [n, P] the unscaled directions delta_i ~ N(0, I) (the episodes ran
    theta +- nu delta_i); returns_pos, returns_neg [n]; ``step_size`` alpha > 0; ``top_b``
    b in [1, n] (None: n). sigma_R = 0 means every kept return is equal, so every difference
    is 0 and the step is 0 (returned as such instead of 0/0 = NaN).
    Lecture: slides "Policy Gradients and Gradient-Free Optimization", "Augmented Random
    Search" (theta := theta + alpha/(n sigma_R) sum [r^+ - r^-] eps).
    Paper: Mania, Guy & Recht (2018), arXiv:1803.07055, Algorithm 2 (V1-t/V2-t with top b).
    """
    theta = as_float(theta, "theta", dtype=np.float64)
    deltas = _matrix(deltas, "deltas")
    n = deltas.shape[0]
    if theta.ndim != 1 or deltas.shape[1] != theta.shape[0]:
        raise ValueError(f"deltas must be [n, {theta.shape[0]}], got {deltas.shape}")
    rp, rn = _returns(returns_pos, "returns_pos", n), _returns(returns_neg, "returns_neg", n)
    alpha = _positive(step_size, "step_size")
    b = n if top_b is None else top_b
    if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or not 1 <= b <= n:
        raise ValueError(f"top_b must be an integer in [1, {n}] or None, got {top_b!r}")
    top = np.argsort(-np.maximum(rp, rn), kind="stable")[:b]
    kept = np.concatenate([rp[top], rn[top]])
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        sigma_r = float(kept.std())
        if _spread_ok(sigma_r):
            step = alpha / (b * sigma_r) * ((rp[top] - rn[top]) @ deltas[top])
            if np.isfinite(step).all():
                return theta + step, sigma_r, top
        # Returns so large (or so close) that their squares or differences leave float64:
        # divide them by a power of two c >= max |r| (exact); the step is scale-free,
        # theta' = theta + alpha / (b std(r/c)) sum (r+/c - r-/c) delta, sigma_R = c std(r/c).
        c = _pow2_scale(kept)
        s = float((kept / c).std())
        if s == 0.0:
            return theta.copy(), 0.0, top
        step = alpha / (b * s) * ((rp[top] / c - rn[top] / c) @ deltas[top])
        return theta + step, s * c, top
