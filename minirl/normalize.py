"""Running observation normalization and reward scaling (both optional, saved with the model).

Observation normalization (per coordinate, statistics of every observation seen so far):

    obs_norm = clip((obs - mean) / sqrt(var + eps), -clip, clip)

Reward scaling by the running std of the discounted return (no mean subtraction, so the
sign of every reward is kept; the return accumulator restarts at every episode end):

    ret_t    = gamma * ret_{t-1} * (1 - done_{t-1}) + r_t
    r_scaled = clip(r_t / sqrt(Var[ret] + eps), -clip, clip)

Reference: Engstrom et al., "Implementation Matters in Deep RL: A Case Study on PPO and
TRPO", ICLR 2020 (cited in lecture 004_233fd61d3e4def9e.txt, PPO slides).

Running moments merge batch statistics exactly (Chan, Golub & LeVeque 1979): after any
stream of batches, ``mean`` and ``var`` equal ``np.mean`` / ``np.var`` (ddof=0) of the
concatenated stream, up to rounding.
"""
from __future__ import annotations

import numpy as np

__all__ = ["merge_moments", "RunningMeanStd", "ObsNormalizer", "RewardScaler"]


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

    def update(self, batch: np.ndarray) -> None:
        """Fold a batch ``[B, *shape]`` into the statistics."""
        batch = np.asarray(batch, dtype=np.float64)
        b = batch.shape[0]
        if self.count == 0.0:
            self.mean, self.var, self.count = batch.mean(axis=0), batch.var(axis=0), float(b)
            return
        self.mean, self.var, self.count = merge_moments(
            self.mean, self.var, self.count, batch.mean(axis=0), batch.var(axis=0), float(b)
        )

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
            self.rms.update(obs)
        out = (obs - self.rms.mean) / np.sqrt(self.rms.var + self.eps)
        return np.clip(out, -self.clip, self.clip, out=out)

    def state_dict(self) -> dict[str, np.ndarray]:
        return self.rms.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.rms.load_state_dict(state)


class RewardScaler:
    """Divide rewards by the running std of the discounted return, per env; no mean shift.

    ``scale(rewards, done)``: rewards [N] of one vector step, done [N] bool
    (terminated | truncated of that step) -> scaled rewards [N]. The return accumulator of
    an env restarts at zero after its episode ends.
    """

    def __init__(self, num_envs: int, gamma: float, clip: float = 10.0, eps: float = 1e-8):
        self.rms = RunningMeanStd(())
        self.ret = np.zeros(num_envs, dtype=np.float64)
        self.gamma = float(gamma)
        self.clip = float(clip)
        self.eps = float(eps)

    def scale(self, rewards: np.ndarray, done: np.ndarray) -> np.ndarray:
        self.ret = self.ret * self.gamma + rewards
        self.rms.update(self.ret)
        self.ret[done] = 0.0  # a new episode's return starts from zero
        return np.clip(rewards / np.sqrt(self.rms.var + self.eps), -self.clip, self.clip)

    def reset(self) -> None:
        """Forget the per-env return accumulators (envs were reset); keep the statistics."""
        self.ret[:] = 0.0

    def state_dict(self) -> dict[str, np.ndarray]:
        return {**self.rms.state_dict(), "ret": self.ret.copy()}

    def load_state_dict(self, state: dict) -> None:
        self.rms.load_state_dict(state)
        self.ret = np.array(state["ret"], dtype=np.float64)
