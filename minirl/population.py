"""Population evaluation for gradient-free search: parameter vectors in, episode returns out.

Random search, CEM, ES and ARS spend almost all their time running independent episodes of
perturbed policies. An ``Evaluator`` runs a batch of K such episodes and returns their
returns and step counts; three backends share one interface and give the same bits:

    ev = make_evaluator(spec, backend="serial" | "processes" | "ray", num_workers=2, noise=table)
    res = ev.evaluate(seeds, params=P_batch)                       # params [K, P]
    res = ev.evaluate(seeds, theta=theta, noise_idx=idx, noise_scale=s)
          # episode k runs theta + s_k * table[idx_k : idx_k + P]  (s_k = +sigma, -sigma, 0)
    res.returns [K] float64, res.lengths [K] int64,
    res.obs_count [K], res.obs_mean [K, obs_dim], res.obs_var [K, obs_dim] (if collect_obs)
    ev.close()

| backend       | where episodes run                                   | needs                     |
|---------------|------------------------------------------------------|---------------------------|
| ``serial``    | this process, one env                                | -                         |
| ``processes`` | ``num_workers`` local processes (concurrent.futures) | standard library          |
| ``ray``       | ``num_workers`` Ray actors, each with its own env;   | ``pip install ray`` (the  |
|               | the noise table is put in the object store once;     | ``ray`` extra)            |
|               | ``address=...`` joins an existing cluster            |                           |

Bit-identical on every backend and worker count: each episode is a pure function of (its
parameters, its env seed, the frozen observation-normalizer statistics). The caller draws the
seeds from the run's generator, the batch is cut into contiguous chunks whose results are put
back by position, and per-episode observation moments are merged in task order
(``merge_obs_stats``), so neither scheduling nor the number of workers can change a result.

Failures never hang: an exception in a worker is raised here as ``WorkerError`` (naming the
tasks and carrying the worker's error), a worker process or actor that dies gives
``WorkerError`` too, and ``timeout`` (seconds per ``evaluate`` call) bounds a stuck worker.
Ctrl-C: worker processes ignore SIGINT from their start (a terminal signals the whole process
group; the caller decides what an interrupt means, e.g. the CLI finishes the iteration and
saves); a KeyboardInterrupt in the caller during ``evaluate`` terminates the running workers
(the next call starts fresh ones). ``close()`` shuts the pool down and joins it.

The policy is deterministic (Discrete: argmax of the logits; Box: the network output clipped
to the action bounds), as in Salimans et al. (2017) and Mania et al. (2018): the search noise
is in the parameters, not in the actions.

Lecture: "Policy Gradients and Gradient-Free Optimization" ("Gradients are hard, but evaluation
is easy"; "Trade sampling trajectories for sampling parameters"). Papers: Salimans et al.
(2017), arXiv:1703.03864 (shared noise table, workers exchange seeds/indices and returns);
Mania, Guy & Recht (2018), arXiv:1803.07055 (ARS V2 state statistics from all rollouts).
"""
from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import math
import multiprocessing
from typing import Callable, NamedTuple

import gymnasium as gym
import numpy as np
from gymnasium import spaces

import minirl.envs  # noqa: F401  (registers the known-answer envs in every worker)
from minirl.nn import ACTIVATIONS, MLP
from minirl.normalize import ObsNormalizer, RunningMeanStd, merge_moments

__all__ = ["PolicySpec", "DeterministicPolicy", "NoiseTable", "EvalResult", "WorkerError",
           "Evaluator", "SerialEvaluator", "ProcessEvaluator", "RayEvaluator", "make_evaluator",
           "merge_obs_stats", "run_episode", "BACKENDS"]

BACKENDS = ("serial", "processes", "ray")


class WorkerError(RuntimeError):
    """A population worker raised or died; ``__cause__`` holds the worker's own error."""


@dataclasses.dataclass(frozen=True)
class PolicySpec:
    """Picklable recipe each worker turns into its env and policy network.

    env: a gymnasium id, or a picklable zero-argument callable returning an env (e.g.
    ``functools.partial(gym.make, "Pendulum-v1", g=9.81)``). hidden_sizes: () is the linear
    policy a = W s + b, (64, 64) a two-hidden-layer MLP. max_episode_steps: cut episodes after
    this many steps (None: only the env's own time limit). bias: False drops the linear
    policy's bias, a = W s (the ARS paper's linear policy M; linear policies only).
    """

    env: str | Callable[[], gym.Env]
    hidden_sizes: tuple = ()
    activation: str = "tanh"
    max_episode_steps: int | None = None
    bias: bool = True

    def __post_init__(self):
        if not (isinstance(self.env, str) or callable(self.env)):
            raise TypeError(f"env must be an env id or a callable, got {self.env!r}")
        sizes = tuple(self.hidden_sizes)
        if any(isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h < 1
               for h in sizes):
            raise ValueError(f"hidden_sizes must be positive integers, got {self.hidden_sizes!r}")
        object.__setattr__(self, "hidden_sizes", tuple(int(h) for h in sizes))
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)}, "
                             f"got {self.activation!r}")
        m = self.max_episode_steps
        if m is not None and (isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1):
            raise ValueError(f"max_episode_steps must be a positive integer or None, got {m!r}")
        if not isinstance(self.bias, (bool, np.bool_)) or (not self.bias and self.hidden_sizes):
            raise ValueError(f"bias must be a bool, and False only for a linear policy "
                             f"(hidden_sizes=()), got bias={self.bias!r}")

    def make_env(self) -> gym.Env:
        """A fresh env; observations that are not 1-D Boxes (Discrete, Dict, ...) are
        flattened as for every other agent (``minirl.spaces.flatten_observation_wrapper``)."""
        from minirl.spaces import flatten_observation_wrapper

        env = gym.make(self.env, disable_env_checker=True) if isinstance(self.env, str) \
            else self.env()
        return flatten_observation_wrapper(env)


class DeterministicPolicy:
    """Deterministic MLP policy over a flat float64 parameter vector (linear: no hidden layer).

    ``raw_actions(params, x)``: x [B, obs_dim] (normalized) -> Discrete: argmax indices [B]
    (ties: lowest index); Box: network outputs [B, act_dim], unclipped.
    ``env_actions``: the same, Box outputs clipped to the bounds (what the env receives).
    Linear policy layout: theta = [W (obs_dim x act_dim, row-major), b (act_dim)], a = s W + b;
    ``bias=False``: theta = W only, a = s W (the ARS paper's M = W^T, no bias).
    """

    def __init__(self, obs_space: spaces.Space, action_space: spaces.Space,
                 hidden_sizes=(), activation: str = "tanh", bias: bool = True):
        if not (isinstance(obs_space, spaces.Box) and len(obs_space.shape) == 1):
            raise TypeError(f"observation space must be a 1-D Box, got {obs_space}")
        self.discrete = isinstance(action_space, spaces.Discrete)
        if not self.discrete and not (isinstance(action_space, spaces.Box)
                                      and len(action_space.shape) == 1):
            raise TypeError(f"action space must be Discrete or a 1-D Box, got {action_space}")
        self.action_space = action_space
        self.obs_dim = int(obs_space.shape[0])
        self.act_dim = int(action_space.n) if self.discrete else int(action_space.shape[0])
        self.net = MLP([self.obs_dim, *hidden_sizes, self.act_dim], ACTIVATIONS[activation],
                       dtype=np.float64)
        self.linear = not hidden_sizes
        if not bias and not self.linear:
            raise ValueError("bias=False needs a linear policy (hidden_sizes=())")
        self.bias = bool(bias)
        self.n_params = self.net.n_params if self.bias else self.obs_dim * self.act_dim

    def init(self, rng: np.random.Generator, zero: bool = False) -> np.ndarray:
        """Initial theta [n_params]: all zeros (ARS's linear policy) or orthogonal weights
        with a small (0.01-gain) output layer."""
        theta = self.net.zeros() if zero else self.net.init(rng, out_gain=0.01)
        return theta if self.bias else theta[:self.n_params].copy()

    def raw_actions(self, params: np.ndarray, x: np.ndarray) -> np.ndarray:
        if self.linear:   # the Linear layer's own two operations, without the MLP plumbing
            n_w = self.obs_dim * self.act_dim
            out = np.matmul(np.asarray(x, dtype=np.float64),
                            params[:n_w].reshape(self.obs_dim, self.act_dim))
            if self.bias:
                out += params[n_w:]
        else:
            out, _ = self.net.forward(params, x)
        return np.argmax(out, axis=1) if self.discrete else out

    def env_actions(self, params: np.ndarray, x: np.ndarray) -> np.ndarray:
        a = self.raw_actions(params, x)
        if self.discrete:   # indices 0..n-1 -> the env's start..start+n-1
            return a + int(self.action_space.start)
        return np.clip(a, self.action_space.low, self.action_space.high)


class NoiseTable:
    """A block of N(0, 1) noise shared by the driver and every worker (Salimans et al. 2017).

    Perturbation k is the slice ``noise[idx_k : idx_k + dim]``, so a worker receives an
    integer instead of a vector. ``size`` float32 numbers drawn from ``default_rng(seed)``.
    """

    def __init__(self, size: int = 2**22, seed: int = 0, noise: np.ndarray | None = None):
        if noise is None:
            if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
                raise ValueError(f"size must be a positive integer, got {size!r}")
            noise = np.random.default_rng(seed).standard_normal(int(size), dtype=np.float32)
        self.noise = np.asarray(noise)
        if self.noise.ndim != 1:
            raise ValueError(f"noise must be 1-D, got shape {self.noise.shape}")

    def sample_index(self, rng: np.random.Generator, dim: int, n: int) -> np.ndarray:
        """n start indices [n] int64, uniform over the table's valid starts."""
        if dim > self.noise.size:
            raise ValueError(f"noise table of size {self.noise.size} is smaller than dim={dim}")
        return rng.integers(0, self.noise.size - dim + 1, size=n, dtype=np.int64)

    def rows(self, idx, dim: int) -> np.ndarray:
        """The perturbation directions [n, dim] float64 for start indices idx [n]."""
        idx = np.asarray(idx, dtype=np.int64)
        return np.stack([self.noise[i:i + dim] for i in idx]).astype(np.float64)


class EvalResult(NamedTuple):
    """Per-episode results of one ``evaluate`` call, in task order."""

    returns: np.ndarray          # [K] float64, undiscounted episode returns
    lengths: np.ndarray          # [K] int64, env steps of each episode
    obs_count: np.ndarray        # [K] float64 observations seen (0 unless collect_obs)
    obs_mean: np.ndarray         # [K, obs_dim] their mean (raw observations)
    obs_var: np.ndarray          # [K, obs_dim] their variance (ddof=0)


def run_episode(env: gym.Env, policy: DeterministicPolicy, params: np.ndarray, seed: int,
                normalizer: ObsNormalizer | None = None, max_steps: int | None = None,
                collect_obs: bool = False):
    """One episode from ``env.reset(seed=seed)``: (return, length, obs moments or None).

    Every observation the policy acts on (raw, before normalization) enters the moments
    ``(count, mean [obs_dim], var [obs_dim])`` when ``collect_obs`` (ARS V2's state statistics).
    """
    obs, _ = env.reset(seed=int(seed))
    total, n, seen = 0.0, 0, []
    if normalizer is not None:   # ObsNormalizer's formula, its sqrt taken once per episode
        mean, std = normalizer.rms.mean, np.sqrt(normalizer.rms.var + normalizer.eps)
    while True:
        x = np.asarray(obs, dtype=np.float64).reshape(1, -1)
        if collect_obs:
            seen.append(x[0])
        if normalizer is not None:
            x = (x - mean) / std
            np.clip(x, -normalizer.clip, normalizer.clip, out=x)
        obs, r, terminated, truncated, _ = env.step(policy.env_actions(params, x)[0])
        total += float(r)
        n += 1
        if terminated or truncated or (max_steps is not None and n >= max_steps):
            break
    if not collect_obs:
        return total, n, None
    seen = np.stack(seen)
    return total, n, (float(len(seen)), seen.mean(axis=0), seen.var(axis=0))


def merge_obs_stats(rms: RunningMeanStd, result: EvalResult) -> None:
    """Fold the per-episode observation moments of ``result`` into ``rms``, in task order
    (so the merged statistics do not depend on which worker ran which episode)."""
    for count, mean, var in zip(result.obs_count, result.obs_mean, result.obs_var):
        if count == 0:
            continue
        if rms.count == 0:
            rms.mean, rms.var, rms.count = mean.copy(), var.copy(), float(count)
        else:
            rms.mean, rms.var, rms.count = merge_moments(rms.mean, rms.var, rms.count,
                                                         mean, var, float(count))


class _Worker:
    """Holds one env and policy; runs a chunk of tasks. Built lazily on the first chunk so a
    bad env raises inside ``run`` (and reaches the caller) instead of killing the worker."""

    def __init__(self, spec: PolicySpec, noise: np.ndarray | None = None):
        self.spec, self.noise, self.env = spec, noise, None

    def _setup(self):
        self.env = self.spec.make_env()
        self.policy = DeterministicPolicy(self.env.observation_space, self.env.action_space,
                                          self.spec.hidden_sizes, self.spec.activation,
                                          self.spec.bias)

    def run(self, chunk: dict) -> tuple:
        if self.env is None:
            self._setup()
        normalizer = None
        if chunk["obs_mean"] is not None:
            normalizer = ObsNormalizer((self.policy.obs_dim,))
            normalizer.load_state_dict({"mean": chunk["obs_mean"], "var": chunk["obs_var"],
                                        "count": 1.0})
        k, d = len(chunk["seeds"]), self.policy.obs_dim
        out = (np.zeros(k), np.zeros(k, np.int64), np.zeros(k), np.zeros((k, d)),
               np.zeros((k, d)))
        for i in range(k):
            if chunk["params"] is not None:
                params = chunk["params"][i]
            else:
                idx, p = int(chunk["noise_idx"][i]), self.policy.n_params
                params = chunk["theta"] + chunk["noise_scale"][i] * self.noise[idx:idx + p].astype(
                    np.float64)
            ret, length, stats = run_episode(self.env, self.policy, params, chunk["seeds"][i],
                                             normalizer, self.spec.max_episode_steps,
                                             chunk["collect_obs"])
            out[0][i], out[1][i] = ret, length
            if stats is not None:
                out[2][i], out[3][i], out[4][i] = stats
        return out

    def ping(self) -> bool:
        return True


class Evaluator:
    """Common interface: validate a batch, cut it into chunks, run them, reassemble in order.

    Subclasses implement ``_map(chunks) -> list of chunk results`` (same order) and ``close``.
    Usable as a context manager. ``obs_dim`` and ``n_params`` describe the policy.
    """

    num_workers = 1

    def __init__(self, spec: PolicySpec, noise: NoiseTable | np.ndarray | None = None,
                 chunks_per_worker: int = 4):
        if not isinstance(spec, PolicySpec):
            raise TypeError(f"spec must be a PolicySpec, got {type(spec).__name__}")
        self.spec = spec
        self.noise = noise.noise if isinstance(noise, NoiseTable) else noise
        env = spec.make_env()
        try:
            policy = DeterministicPolicy(env.observation_space, env.action_space,
                                         spec.hidden_sizes, spec.activation, spec.bias)
        finally:
            env.close()
        self.obs_dim, self.n_params = policy.obs_dim, policy.n_params
        if isinstance(chunks_per_worker, bool) or not isinstance(chunks_per_worker, int) \
                or chunks_per_worker < 1:
            raise ValueError(f"chunks_per_worker must be a positive integer, "
                             f"got {chunks_per_worker!r}")
        self.chunks_per_worker = chunks_per_worker
        self.closed = False

    def evaluate(self, seeds, params=None, *, theta=None, noise_idx=None, noise_scale=None,
                 obs_norm: ObsNormalizer | None = None, collect_obs: bool = False) -> EvalResult:
        """Run K episodes; see the module docstring. seeds [K] non-negative ints (env reset
        seeds); either params [K, n_params] or theta [n_params] + noise_idx [K] + noise_scale
        [K]; obs_norm: a normalizer whose current (frozen) statistics every episode uses."""
        if self.closed:
            raise RuntimeError("evaluator is closed")
        seeds = np.asarray(seeds)
        if seeds.ndim != 1 or seeds.size == 0 or seeds.dtype.kind not in "iu" or seeds.min() < 0:
            raise ValueError("seeds must be a non-empty 1-D array of non-negative integers")
        k, p = seeds.size, self.n_params
        chunk = {"params": None, "theta": None, "noise_idx": None, "noise_scale": None,
                 "obs_mean": None, "obs_var": None, "collect_obs": bool(collect_obs)}
        if params is not None:
            if theta is not None or noise_idx is not None or noise_scale is not None:
                raise ValueError("pass either params or theta/noise_idx/noise_scale, not both")
            params = np.asarray(params, dtype=np.float64)
            if params.shape != (k, p) or not np.isfinite(params).all():
                raise ValueError(f"params must be finite with shape ({k}, {p}), "
                                 f"got {params.shape}")
            chunk["params"] = params
        else:
            if self.noise is None:
                raise ValueError("theta/noise_idx need an evaluator built with a noise table")
            theta = np.asarray(theta, dtype=np.float64)
            if theta.shape != (p,) or not np.isfinite(theta).all():
                raise ValueError(f"theta must be finite with shape ({p},), got {theta.shape}")
            noise_idx = np.asarray(noise_idx)
            if noise_idx.shape != (k,) or noise_idx.dtype.kind not in "iu" or (k and (
                    noise_idx.min() < 0 or noise_idx.max() > self.noise.size - p)):
                raise ValueError(f"noise_idx must be {k} integers in [0, "
                                 f"{self.noise.size - p}]")
            noise_scale = np.asarray(noise_scale, dtype=np.float64)
            if noise_scale.shape != (k,) or not np.isfinite(noise_scale).all():
                raise ValueError(f"noise_scale must be {k} finite numbers, "
                                 f"got shape {noise_scale.shape}")
            chunk.update(theta=theta, noise_idx=noise_idx.astype(np.int64),
                         noise_scale=noise_scale)
        if obs_norm is not None:
            chunk["obs_mean"], chunk["obs_var"] = obs_norm.rms.mean, obs_norm.rms.var
        n_chunks = min(k, self.num_workers * self.chunks_per_worker)
        bounds = np.linspace(0, k, n_chunks + 1).astype(int)
        chunks = []
        for a, b in zip(bounds[:-1], bounds[1:]):
            c = dict(chunk, seeds=seeds[a:b].astype(np.int64))
            for key in ("params", "noise_idx", "noise_scale"):
                if c[key] is not None:
                    c[key] = c[key][a:b]
            chunks.append(c)
        parts = self._map(chunks, bounds)
        return EvalResult(*(np.concatenate([part[j] for part in parts]) for j in range(5)))

    def _map(self, chunks: list[dict], bounds) -> list[tuple]:
        raise NotImplementedError

    def close(self) -> None:
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _fail(bounds, i: int, err: BaseException) -> WorkerError:
    return WorkerError(f"population worker failed on tasks {bounds[i]}..{bounds[i + 1] - 1}: "
                       f"{type(err).__name__}: {err}")


class SerialEvaluator(Evaluator):
    """Every episode in this process (the reference backend)."""

    def __init__(self, spec: PolicySpec, noise=None):
        super().__init__(spec, noise, chunks_per_worker=1)
        self._worker = _Worker(spec, self.noise)

    def _map(self, chunks, bounds):
        out = []
        for i, c in enumerate(chunks):
            try:
                out.append(self._worker.run(c))
            except Exception as e:
                raise _fail(bounds, i, e) from e
        return out

    def close(self):
        if self._worker.env is not None:
            self._worker.env.close()
        super().close()


_PROCESS_WORKER: _Worker | None = None


def _process_init(spec, noise):
    """Worker start-up: SIGINT ignored first (a Ctrl-C in a terminal signals the whole
    process group; the parent decides what an interrupt means, and a worker that died of one
    mid-write could leave the result queue locked), then unblocked (``hold_sigint`` blocked
    it for the spawn, so a Ctrl-C during start-up stays pending and is discarded here)."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    global _PROCESS_WORKER
    _PROCESS_WORKER = _Worker(spec, noise)


@contextlib.contextmanager
def hold_sigint():
    """SIGINT blocked in this thread while worker processes may start (this module's pool
    spawns them lazily in ``submit``; the CLI also holds it while async env workers start): a
    started process inherits the mask, so it cannot die of a terminal's Ctrl-C (sent to the
    whole process group) before it ignores SIGINT itself; here a Ctrl-C meanwhile stays
    pending and is delivered (to this process's own handler) when the block ends, not lost."""
    import signal
    if not hasattr(signal, "pthread_sigmask"):   # (Windows: no process groups to signal)
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _process_run(chunk):
    return _PROCESS_WORKER.run(chunk)


def _process_pid(_=None):
    import os
    return os.getpid()


class ProcessEvaluator(Evaluator):
    """``num_workers`` local processes (``concurrent.futures.ProcessPoolExecutor``), each with
    its own env and a copy of the noise table. ``start_method`` "spawn" (default: safe with
    threads in the parent) or "forkserver"/"fork". A dead process (``BrokenProcessPool``)
    makes this evaluator unusable: close it and build a new one."""

    def __init__(self, spec: PolicySpec, noise=None, num_workers: int = 2,
                 start_method: str = "spawn", timeout: float | None = None,
                 chunks_per_worker: int = 4):
        super().__init__(spec, noise, chunks_per_worker)
        self.num_workers = _check_workers(num_workers)
        self.timeout = _check_timeout(timeout)
        self._ctx = multiprocessing.get_context(start_method)
        self._pool = self._new_pool()

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(self.num_workers, mp_context=self._ctx,
                                      initializer=_process_init,
                                      initargs=(self.spec, self.noise))

    def worker_pids(self) -> list[int]:
        """Process ids of the worker processes (started on first use)."""
        return sorted(p.pid for p in (self._pool._processes or {}).values())

    #: seconds between checks that every worker process is still alive while waiting
    poll_interval = 0.5

    def _dead(self) -> list:
        processes = list((self._pool._processes or {}).values())   # (a snapshot: the pool's
        return [p for p in processes if not p.is_alive()]           # thread may change it)

    def _map(self, chunks, bounds):
        dead = self._dead()
        if dead:   # found before new work is queued behind it
            self._kill()
            raise WorkerError(f"a population worker process died (pid {dead[0].pid}, exit code "
                              f"{dead[0].exitcode}) before tasks 0..{bounds[-1] - 1}")
        futures = []
        try:
            with hold_sigint():
                futures += [self._pool.submit(_process_run, c) for c in chunks]
            done, pending = self._wait(futures, bounds)
        except WorkerError:
            raise
        except BaseException:   # KeyboardInterrupt or another exception in this process:
            self._restart()     # no worker keeps running a batch nobody will collect
            raise
        for i, f in enumerate(futures):
            err = f.exception() if f in done else None
            if isinstance(err, cf.process.BrokenProcessPool):
                self._kill()
                raise WorkerError(f"a population worker process died (tasks "
                                  f"{bounds[i]}..{bounds[i + 1] - 1}): {err}") from err
            if err is not None:
                for g in futures:
                    g.cancel()
                raise _fail(bounds, i, err) from err
        if pending:
            i = min(futures.index(f) for f in pending)
            self._kill()
            raise WorkerError(f"population workers did not finish tasks "
                              f"{bounds[i]}..{bounds[i + 1] - 1} within {self.timeout} s")
        return [f.result() for f in futures]

    def _wait(self, futures, bounds):
        """(done, pending) when all are done, one raised, or ``timeout`` passed; never an
        unbounded wait: every ``poll_interval`` s a worker process that died without the pool
        noticing (e.g. while holding a queue lock) ends the wait with WorkerError."""
        deadline = None if self.timeout is None else _now() + self.timeout
        while True:
            left = self.poll_interval if deadline is None else \
                max(0.0, min(self.poll_interval, deadline - _now()))
            done, pending = cf.wait(futures, timeout=left, return_when=cf.FIRST_EXCEPTION)
            if not pending or any(f.exception() is not None for f in done):
                return done, pending
            if deadline is not None and _now() >= deadline:
                return done, pending
            dead = self._dead()
            if dead:
                i = min(futures.index(f) for f in pending)
                self._kill()
                raise WorkerError(f"a population worker process died (pid {dead[0].pid}, exit "
                                  f"code {dead[0].exitcode}) on tasks "
                                  f"{bounds[i]}..{bounds[i + 1] - 1}")

    def _terminate(self):
        """Terminate the workers, drop queued work, and wait (bounded) for the pool's manager
        thread, so that no pool thread or pipe is left for interpreter exit to trip over."""
        processes = list((self._pool._processes or {}).values())
        for p in processes:
            p.terminate()
        self._pool.shutdown(wait=False, cancel_futures=True)
        for p in processes:
            p.join(timeout=5)
        thread = getattr(self._pool, "_executor_manager_thread", None)
        if thread is not None:
            thread.join(timeout=5)

    def _kill(self):
        self._terminate()
        self.closed = True

    def _restart(self):
        """After an interrupt: fresh workers (started on the next ``evaluate``), the evaluator
        still usable -- the agent's state changes only between iterations."""
        self._terminate()
        self._pool = self._new_pool()

    def close(self):
        if not self.closed:
            self._pool.shutdown(wait=True, cancel_futures=True)
        super().close()


class RayEvaluator(Evaluator):
    """``num_workers`` Ray actors, each holding its own env; the noise table goes into the
    object store once (``ray.put``) and every actor maps the same copy.

    ``address``: None starts (or reuses) a local Ray with ``num_workers`` CPUs; ``"auto"`` or
    ``"ray://host:10001"``/``"host:6379"`` joins an existing cluster (``ray.init(address=...)``).
    Ray is shut down by ``close`` only if this evaluator started it. Chunks go to whichever
    actor is free; a task error gives ``WorkerError`` with the worker's exception, a dead actor
    ``WorkerError`` with Ray's ``RayActorError``.
    """

    def __init__(self, spec: PolicySpec, noise=None, num_workers: int = 2,
                 address: str | None = None, timeout: float | None = None,
                 chunks_per_worker: int = 4, cpus_per_worker: float = 1.0):
        super().__init__(spec, noise, chunks_per_worker)
        try:
            import ray
        except ImportError as e:
            raise ImportError("the 'ray' backend needs Ray: pip install 'ray>=2.9' "
                              "(or this package's [ray] extra)") from e
        self._ray = ray
        self.num_workers = _check_workers(num_workers)
        self.timeout = _check_timeout(timeout)
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            kwargs = dict(include_dashboard=False, log_to_driver=False)
            if address is None:
                kwargs["num_cpus"] = self.num_workers
            ray.init(address=address, **kwargs)
        noise_ref = ray.put(self.noise) if self.noise is not None else None
        actor_cls = ray.remote(num_cpus=cpus_per_worker, max_restarts=0)(_Worker)
        self._actors = [actor_cls.remote(spec, noise_ref) for _ in range(self.num_workers)]

    def kill_worker(self, i: int) -> None:
        """Kill actor ``i`` (to test failure handling)."""
        self._ray.kill(self._actors[i])

    def _map(self, chunks, bounds):
        ray = self._ray
        free, queue, running, out = list(range(len(self._actors))), list(range(len(chunks))), {}, {}
        deadline = None if self.timeout is None else _now() + self.timeout
        while queue or running:
            while queue and free:
                i, a = queue.pop(0), free.pop(0)
                running[self._actors[a].run.remote(chunks[i])] = (i, a)
            left = None if deadline is None else max(0.0, deadline - _now())
            ready, _ = ray.wait(list(running), num_returns=1, timeout=left)
            if not ready:
                i = min(i for i, _ in running.values())
                self.close()   # a stuck actor cannot be interrupted: kill them all
                raise WorkerError(f"population workers did not finish tasks "
                                  f"{bounds[i]}..{bounds[i + 1] - 1} within {self.timeout} s")
            ref = ready[0]
            i, a = running.pop(ref)
            try:
                out[i] = ray.get(ref)
            except ray.exceptions.RayTaskError as e:
                cause = e.cause if getattr(e, "cause", None) is not None else e
                raise _fail(bounds, i, cause) from cause
            except ray.exceptions.RayActorError as e:
                raise WorkerError(f"population worker (Ray actor {a}) died on tasks "
                                  f"{bounds[i]}..{bounds[i + 1] - 1}: {e}") from e
            free.append(a)
        return [out[i] for i in range(len(chunks))]

    def close(self):
        if not self.closed:
            for actor in self._actors:
                self._ray.kill(actor)
            self._actors = []
            if self._owns_ray:
                self._ray.shutdown()
        super().close()


def _now() -> float:
    import time
    return time.monotonic()


def _check_workers(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"num_workers must be a positive integer, got {n!r}")
    return int(n)


def _check_timeout(t):
    if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float))
                          or not 0 < t < math.inf):
        raise ValueError(f"timeout must be a positive number of seconds or None, got {t!r}")
    return t


def make_evaluator(spec: PolicySpec, backend: str = "serial", num_workers: int = 1,
                   noise: NoiseTable | np.ndarray | None = None, address: str | None = None,
                   timeout: float | None = None) -> Evaluator:
    """The evaluator for ``backend`` ("serial", "processes" or "ray"); ``address`` (Ray only)
    joins an existing cluster. Raises ValueError for an unknown backend."""
    if backend == "serial":
        return SerialEvaluator(spec, noise)
    if backend == "processes":
        return ProcessEvaluator(spec, noise, num_workers, timeout=timeout)
    if backend == "ray":
        return RayEvaluator(spec, noise, num_workers, address=address, timeout=timeout)
    raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
