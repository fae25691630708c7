"""Running observation normalization and reward scaling (both optional, saved with the model).

Observation normalization (per coordinate, statistics of every observation seen so far):

    obs_norm = clip((obs - mean) / sqrt(var + eps), -clip, clip)

Reward scaling by the running std of the discounted return (no mean subtraction, so the
sign of every reward is kept; the return accumulator restarts at every episode end):

    ret_t    = gamma * ret_{t-1} * (1 - done_{t-1}) + r_t
    r_scaled = clip(r_t / sqrt(Var[ret] + eps), -clip, clip)    once Var[ret] > 0
    r_scaled = r_t                                              while Var[ret] == 0

The second line is minirl's rule for the start of training: while every return seen so far
is equal (always so after a single one; also after one vector step in which every env got
the same reward) the variance is 0 and says nothing about the reward scale, and dividing by
``sqrt(0 + eps)`` would send every reward to the clip bound (what several popular libraries
do). So rewards pass through unscaled until the returns first differ. The statistics
themselves are exact: ``Var[ret]`` is always the population variance of every return seen.

Reference: Engstrom et al., "Implementation Matters in Deep RL: A Case Study on PPO and
TRPO", ICLR 2020 (arXiv:2005.12729), cited in Stanford CS234, "Lecture 6: Policy Gradient
II" (PPO slides).

Running moments merge batch statistics exactly (Chan, Golub & LeVeque 1979): after any
stream of batches, ``mean`` and ``var`` equal ``np.mean`` / ``np.var`` (ddof=0) of the
concatenated stream, up to rounding.
"""
from __future__ import annotations

import math

import numpy as np

from kernels._validate import as_float, clip_ufunc, positive_int, unit_interval

__all__ = ["merge_moments", "RunningMeanStd", "ObsNormalizer", "RewardScaler"]

# The rollout calls these once per vector step: per-call overhead counts (ufuncs called
# directly; clip(x, lo, hi) as minimum(maximum(x, lo), hi), the same values NaN included).
_F64 = np.dtype(np.float64)
_FLOATS = (_F64, np.dtype(np.float32))
_sum, _mul, _max, _min = np.add.reduce, np.multiply, np.maximum, np.minimum
_sub, _div = np.subtract, np.true_divide
# The ufunc np.clip calls (np.clip adds ~3 us of Python around it). For bounds -c, c with c
# nonzero and not NaN it gives the bits of minimum(maximum(x, -c), c): both pass NaN through
# and differ only in which of two equal values they return, i.e. for x == +-c == 0.
_clip = clip_ufunc   # (kernels._validate: NumPy 1.x and 2.x)


# ObsNormalizer's fast path computes the batch moments of up to this many numbers ([B, D]
# with B * D <= 32: a2c Pendulum 8x3, MountainCar 16x2) in Python floats, where
# _small_sums_in_order allows it (beyond ~32 numbers NumPy's calls are the faster ones; per-call
# times: python -m benchmarks --only rollout_step).
_PY_MOMENTS_MAX = 32


# RewardScaler's fast path sums the returns of up to this many envs in Python floats (for 16
# envs its Python loops cost more than NumPy's calls: python -m benchmarks --only rollout_step).
_PY_SUM_MAX = 8


def _np_sum(v: list) -> float:
    """``np.add.reduce`` of a 1-D float64 array of at most 16 numbers (the list ``v``) in
    Python floats, in NumPy's order: its pairwise summation adds fewer than 8 numbers one by
    one; 8 to 16 in 8 running sums, combined pairwise, then the rest one by one; the reduction
    starts from the identity 0.0 (a lone -0.0 sums to 0.0)."""
    n = len(v)
    if n < 8:
        total = 0.0
        for x in v:
            total += x
        return 0.0 + total
    r, m = v[:8], n - n % 8
    for i in range(8, m):
        r[i - 8] += v[i]
    total = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    for x in v[m:]:
        total += x
    return 0.0 + total


def _in_order(x: np.ndarray) -> np.ndarray:
    """Column sums of a [B, D] ``x`` added row after row from 0.0, in Python floats."""
    sums = []
    for col in zip(*x.tolist()):
        total = 0.0
        for v in col:
            total += v
        sums.append(0.0 + total)
    return np.array(sums)


def _small_sums_in_order() -> bool:
    """Whether this NumPy's ``np.add.reduce(x, 0)`` of a small float64 array is what the fast
    paths below compute in Python floats: ``_np_sum`` for [N] with N <= 16, and ``_in_order``
    for a C-ordered [B, D] with D >= 2 or B < 8 (an axis-0 reduction adds row after row; [B, 1]
    is a 1-D pairwise sum). Checked on a few arrays at import: the fast paths sum in Python
    floats only if so (else they use NumPy's reductions)."""
    rng = np.random.default_rng(0)
    shapes = [(b,) for b in range(1, _PY_SUM_MAX + 1)] + [(b, 1) for b in range(1, 8)] + [
        (b, d) for d in (2, 3, 4, 5, 8, 16) for b in range(1, _PY_MOMENTS_MAX // d + 1)]
    cases = [np.array([-0.0]), np.array([-0.0, -0.0, 0.0]), np.full(9, -0.0),
             np.full((3, 2), -0.0)]
    cases += [rng.normal(0.0, 1.0, shape) * 10.0 ** rng.uniform(-20, 20, shape)
              for shape in shapes for _ in range(2)]
    ours = (np.float64(_np_sum(x.tolist())) if x.ndim == 1 else _in_order(x) for x in cases)
    return all(a.tobytes() == _sum(x, 0).tobytes() for a, x in zip(ours, cases))


_SMALL_SUMS_IN_ORDER = _small_sums_in_order()
# The rollout's fast path merges the statistics element by element in Python floats (the same
# IEEE double operations as NumPy's, a few us less per call for short vectors) up to this size.
_PY_MERGE_MAX = 12


def _finite(x) -> bool:
    """All of ``x`` (an array or a numpy scalar) finite: one reduction, the exact check only
    when the sum is not finite (a sum of finite values may overflow)."""
    return math.isfinite(_sum(x, axis=None)) or bool(np.isfinite(x).all())


def merge_moments(mean, var, count, batch_mean, batch_var, batch_count):
    """Combine (mean, var, count) of two disjoint samples into those of their union.

    delta = batch_mean - mean;  n = count + batch_count
    mean' = mean + delta * batch_count / n
    var'  = (var*count + batch_var*batch_count + delta^2 * count*batch_count/n) / n
    Shapes: mean, var, batch_mean, batch_var [*shape]; counts scalars.
    """
    n = count + batch_count
    delta = batch_mean - mean
    new_mean = mean + delta * (batch_count / n)
    m2 = var * count + batch_var * batch_count + delta * delta * (count * batch_count / n)
    return new_mean, m2 / n, n


class RunningMeanStd:
    """Running mean and (population) variance of a stream of ``[B, *shape]`` batches."""

    def __init__(self, shape: tuple[int, ...] = ()):
        self.mean = np.zeros(shape, dtype=np.float64)
        self.var = np.ones(shape, dtype=np.float64)
        self.count = 0.0

    def update(self, batch: np.ndarray, name: str = "batch") -> None:
        """Fold a batch ``[B, *shape]`` (B >= 1, finite) into the statistics.

        Raises ValueError naming ``name`` for NaN/inf values, a wrong shape or an empty batch,
        and for values so large that their variance overflows float64 (|x| > ~1e154): any of
        these would leave NaN or inf in the statistics and every later output.

        The batch moments are ``np.mean`` / ``np.var`` (ddof=0) over axis 0, computed with
        their exact operations (one sum serves both), bit for bit; a float array of the
        right shape (what the rollout passes every step) skips the input validation: its
        finiteness is read off the result (a NaN/inf input never gives a finite one).
        """
        if (type(batch) is np.ndarray and batch.dtype in _FLOATS and batch.ndim >= 1
                and batch.shape[1:] == self.mean.shape and batch.shape[0] >= 1):
            if batch.dtype != _F64 or not batch.flags.c_contiguous:
                batch = np.asarray(batch, dtype=_F64, order="C")      # as as_float does
        else:
            batch = as_float(batch, name, dtype=np.float64)
            if batch.ndim < 1 or batch.shape[1:] != self.mean.shape or batch.shape[0] < 1:
                raise ValueError(f"{name} must have shape [B, *{self.mean.shape}] with B >= 1, "
                                 f"got {batch.shape}")
        b = batch.shape[0]
        with np.errstate(over="ignore", invalid="ignore"):  # overflow, NaN input: below
            total = _sum(batch, 0)
            x = batch - total / b          # np.var's centring: its mean, kept [*shape]
            _mul(x, x, out=x)
            new = total / b, _sum(x, 0) / b, float(b)
            if self.mean.ndim == 0:     # scalar statistics (the reward scaler's): the same
                if self.count != 0.0:   # IEEE arithmetic in Python floats, a few us less
                    m, v, n = merge_moments(float(self.mean), float(self.var), self.count,
                                            float(new[0]), float(new[1]), new[2])
                    new = _F64.type(m), _F64.type(v), n
                finite = math.isfinite(new[0]) and math.isfinite(new[1])
            else:
                if self.count != 0.0:
                    new = merge_moments(self.mean, self.var, self.count, *new)
                finite = _finite(new[0]) and _finite(new[1])
        if not finite:
            as_float(batch, name, dtype=np.float64)       # NaN/inf input: the named error
            raise ValueError(f"{name}: the running variance overflows float64 "
                             f"(values up to {np.abs(batch).max():.3g})")
        self.mean, self.var, self.count = new

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean.copy(), "var": self.var.copy(), "count": np.float64(self.count)}

    def load_state_dict(self, state: dict) -> None:
        self.mean = np.array(state["mean"], dtype=np.float64)
        self.var = np.array(state["var"], dtype=np.float64)
        self.count = float(state["count"])


class ObsNormalizer:
    """``clip((obs - mean) / sqrt(var + eps), -clip, clip)`` with running statistics.

    obs: [B, *obs_shape] -> [B, *obs_shape] float64. ``update=True`` folds the batch
    into the statistics first (during training rollouts); evaluation passes ``False``.
    """

    def __init__(self, shape: tuple[int, ...], clip: float = 10.0, eps: float = 1e-8):
        self.rms = RunningMeanStd(shape)
        self.clip = float(clip)
        self.eps = float(eps)

    def __call__(self, obs: np.ndarray, update: bool = False) -> np.ndarray:
        if update:
            self.rms.update(obs, "obs")
        out = (obs - self.rms.mean) / np.sqrt(self.rms.var + self.eps)
        return _min(_max(out, -self.clip, out=out), self.clip, out=out)

    def _update_normalize(self, obs) -> np.ndarray:
        """``self(obs, update=True)`` bit for bit, for the rollout's every vector step.

        The same operations in the same order on the same dtypes, with fewer temporaries:
        ``RunningMeanStd.update``'s batch moments (for one env, B = 1, known without a
        reduction; for B * D <= 32 numbers in Python floats, see ``_small_sums_in_order``),
        ``merge_moments`` element by element in Python floats (vectors up to
        ``_PY_MERGE_MAX`` long), then the normalization. Anything
        else (a non-array, another dtype or shape, longer vectors, a zero or NaN ``clip``)
        and every error (NaN/inf observations, an overflowing variance) goes through the
        public path, which raises its named ValueError and leaves the statistics untouched.
        """
        rms, clip = self.rms, self.clip
        mean = rms.mean
        if not (type(obs) is np.ndarray and obs.dtype in _FLOATS and obs.ndim == 2
                and mean.ndim == 1 and obs.shape[1] == mean.shape[0] <= _PY_MERGE_MAX
                and rms.var.shape == mean.shape and obs.shape[0] >= 1 and rms.count != 0.0
                and clip != 0.0 and clip == clip):
            return self(obs, update=True)
        b = obs.shape[0]
        if b == 1:   # one env: the sum over one row is 0.0 + x (np.add.reduce starts at its
            # identity), divided by 1; the centred squares are 0.0 for a finite x (a NaN/inf
            # row makes the merged mean NaN/inf: the public path's error below)
            batch_mean = [0.0 + v for v in obs[0].tolist()]
            batch_m2 = [0.0] * len(batch_mean)
            batch = x = None
        elif (b * obs.shape[1] <= _PY_MOMENTS_MAX and (obs.shape[1] >= 2 or b < 8)
              and _SMALL_SUMS_IN_ORDER):   # a few envs: the same sums in Python floats, row
            batch_mean, batch_m2 = [], []   # after row from 0.0 (see _small_sums_in_order)
            for col in zip(*obs.tolist()):
                total = 0.0
                for v in col:
                    total += v
                m = (0.0 + total) / b
                total = 0.0
                for v in col:
                    v -= m
                    total += v * v                       # (overflow -> inf: public path)
                batch_mean.append(m)
                batch_m2.append(0.0 + total)
            batch = x = None
        else:
            batch = (obs if obs.dtype == _F64 and obs.flags.c_contiguous
                     else np.asarray(obs, dtype=_F64, order="C"))
            with np.errstate(over="ignore", invalid="ignore"):  # overflow, NaN input: below
                moments = _sum(batch, 0)
                _div(moments, b, out=moments)            # total / b, np.mean's last step
                x = _sub(batch, moments)                 # np.var's centring
                _mul(x, x, out=x)
                batch_mean, batch_m2 = moments.tolist(), _sum(x, 0).tolist()   # (m2: / b below)
        # merge_moments(mean, var, count, batch_mean, batch_var, float(b)) per element
        count, fb = rms.count, float(b)
        n = count + fb
        w_new, w_cross, eps = fb / n, count * fb / n, self.eps
        new_mean, new_var, std = [], [], []
        for m, v, bm, bv in zip(mean.tolist(), rms.var.tolist(), batch_mean, batch_m2):
            delta = bm - m
            var = (v * count + bv / b * fb + delta * delta * w_cross) / n
            new_mean.append(m + delta * w_new)
            new_var.append(var)
            var += eps
            if var < 0.0:         # a negative loaded var: np.sqrt's NaN and warning, below
                return self(obs, update=True)
            std.append(math.sqrt(var))                   # (IEEE sqrt, as np.sqrt)
        if not (math.isfinite(sum(new_mean) + sum(new_var))
                or all(map(math.isfinite, new_mean + new_var))):
            return self(obs, update=True)                # the named error, state untouched
        new = np.array((new_mean, new_var, std))          # (one array: rows mean, var, std)
        rms.mean, rms.var, rms.count = new[0], new[1], n
        x = _sub(obs, new[0]) if x is None else _sub(batch, new[0], out=x)   # (obs - mean)
        _div(x, new[2], out=x)                                              # / sqrt(var + eps)
        return _clip(x, -clip, clip, out=x)

    def state_dict(self) -> dict[str, np.ndarray]:
        return self.rms.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.rms.load_state_dict(state)


class RewardScaler:
    """Divide rewards by the running std of the discounted return, per env; no mean shift.

    ``scale(rewards, done)``: rewards [N] of one vector step, done [N] bool
    (terminated | truncated of that step) or ``None`` when no episode ended (what the
    rollout passes on most steps) -> scaled rewards [N] float64. The return accumulator of
    an env restarts at zero after its episode ends. While the variance of the returns seen
    so far is 0, rewards come back unscaled (see the module docstring).

    Example: ``RewardScaler(2, 0.9)``, ``scale(ones, [False, False])`` then
    ``scale(ones, None)`` leaves ``ret == [1.9, 1.9]`` and ``rms.var == 0.2025``.
    """

    def __init__(self, num_envs: int, gamma: float, clip: float = 10.0, eps: float = 1e-8):
        num_envs = positive_int(num_envs, "num_envs")
        self.rms = RunningMeanStd(())
        self.ret = np.zeros(num_envs, dtype=np.float64)
        self.gamma = unit_interval(gamma, "gamma")
        self.clip = float(clip)
        self.eps = float(eps)
        if not self.clip > 0:  # also rejects NaN
            raise ValueError(f"clip must be > 0, got {clip!r}")
        if not 0 < self.eps < np.inf:
            raise ValueError(f"eps must be finite and > 0, got {eps!r}")

    def scale(self, rewards, done) -> np.ndarray:
        ret = self.ret
        if type(rewards) is not np.ndarray or rewards.dtype != _F64:   # (the rollout's are)
            rewards = as_float(rewards, "rewards", dtype=np.float64)
        if rewards.shape != ret.shape:
            raise ValueError(f"rewards must have shape {ret.shape}, got {rewards.shape}")
        ret = ret * self.gamma + rewards
        self.rms.update(ret, "rewards")        # ValueError naming rewards for NaN/inf
        self.ret = ret
        if done is not None:  # done[None] would index *every* env: None is "nothing ended"
            if type(done) is not np.ndarray:
                done = np.asarray(done)
            if done.dtype != np.bool_ or done.shape != ret.shape:
                raise ValueError(f"done must be None or a bool array of shape "
                                 f"{ret.shape}, got {done.dtype} {done.shape}")
            ret[done] = 0.0  # a new episode's return starts from zero
        var = float(self.rms.var)
        if var == 0.0:  # no spread seen yet: no scale to divide by (module docstring)
            return rewards
        out = rewards / math.sqrt(var + self.eps)       # (math.sqrt: IEEE, as np.sqrt)
        return _min(_max(out, -self.clip, out=out), self.clip, out=out)

    def _scale_step(self, rewards, done) -> tuple[np.ndarray, bool]:
        """``(self.scale(rewards, done), clipped)`` bit for bit, for the rollout's every
        vector step; ``clipped`` says the output went through the clip to [-clip, clip]
        (False: the rewards came back unscaled).

        The same operations in the same order on the same dtypes as ``scale`` with its
        scalar ``RunningMeanStd.update`` (for up to 8 envs all in Python floats, see
        ``_small_sums_in_order``), without re-validating what the rollout passes (float64
        rewards [N], ``done`` None or a bool [N] array). Other input and every error (NaN/inf
        rewards, an overflowing variance) go through ``scale``, which raises its named
        ValueError with the statistics and the return accumulators untouched.
        """
        ret, rms = self.ret, self.rms
        if not (type(rewards) is np.ndarray and rewards.dtype == _F64
                and rewards.shape == ret.shape and rms.mean.ndim == 0
                and (done is None or (type(done) is np.ndarray and done.dtype == np.bool_
                                      and done.shape == ret.shape))):
            return self.scale(rewards, done), float(self.rms.var) != 0.0
        b = ret.shape[0]
        if b <= _PY_SUM_MAX and _SMALL_SUMS_IN_ORDER:   # the same IEEE operations, in
            rs, gamma = rewards.tolist(), self.gamma   # Python floats: ret * gamma + rewards
            ret_l = [a * gamma + r for a, r in zip(ret.tolist(), rs)]
            batch_mean = _np_sum(ret_l) / b
            squares = []                                 # np.var: centred squares
            for v in ret_l:
                v -= batch_mean
                squares.append(v * v)
            batch_var = _np_sum(squares) / b             # (overflow -> inf: public path)
            ret = None
        else:
            ret, ret_l = ret * self.gamma + rewards, None
            with np.errstate(over="ignore", invalid="ignore"):  # overflow, NaN input: below
                batch_mean = float(_sum(ret, 0)) / b
                x = _sub(ret, batch_mean)                # np.var's centring
                _mul(x, x, out=x)
                batch_var = float(_sum(x, 0)) / b
        if rms.count != 0.0:
            m, v, n = merge_moments(float(rms.mean), float(rms.var), rms.count,
                                    batch_mean, batch_var, float(b))
        else:
            m, v, n = batch_mean, batch_var, float(b)
        if not (math.isfinite(m) and math.isfinite(v)):
            out = self.scale(rewards, done)              # the named error, state untouched
            return out, float(self.rms.var) != 0.0
        rms.mean, rms.var, rms.count = _F64.type(m), _F64.type(v), n
        if ret is None:
            ret = np.array(ret_l)
        self.ret = ret
        if done is not None:
            ret[done] = 0.0
        if v == 0.0:
            return rewards, False
        clip, std = self.clip, math.sqrt(v + self.eps)
        if ret_l is not None and clip != 0.0 and clip == clip:   # (finite rewards: min and
            return np.array([min(max(r / std, -clip), clip) for r in rs]), True   # max = clip)
        out = rewards / std
        if clip != 0.0 and clip == clip:   # (always, unless changed after __init__ checked it)
            return _clip(out, -clip, clip, out=out), True
        return _min(_max(out, -clip, out=out), clip, out=out), True

    def reset(self) -> None:
        """Forget the per-env return accumulators (envs were reset); keep the statistics."""
        self.ret[:] = 0.0

    def state_dict(self) -> dict[str, np.ndarray]:
        return {**self.rms.state_dict(), "ret": self.ret.copy()}

    def load_state_dict(self, state: dict) -> None:
        self.rms.load_state_dict(state)
        self.ret = np.array(state["ret"], dtype=np.float64)
