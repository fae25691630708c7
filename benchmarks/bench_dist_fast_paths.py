"""Policy distributions on the on-policy rollout and update paths: per-call CPU time, old vs new.

``old`` is ``minirl/distributions/{categorical,gaussian,sde}.py`` of a git revision (``REV``,
the commit before the fast paths: ef020c4), loaded from ``git show`` into private modules;
``new`` is this tree. Rows:

* ``act``: what ``ActorCriticNet.act`` does with the actor's outputs. old: build the
  distribution, ``sample(rng)`` (gSDE: ``rsample_with_noise(eps)``), ``log_prob(a)``; new: the
  private fast path it now calls (``sde._act_with_noise``, ``gaussian._sample_log_prob``,
  ``categorical._sample_log_prob``).
* the update's calls on a rollout/minibatch batch (``a2c_loss_and_grad``,
  ``ppo_loss_and_grad``): constructor, ``log_prob``, ``entropy``, ``log_prob_backward``,
  ``entropy_backward``, each of the old and of the new module.

Shapes are the presets': A2C Pendulum-v1 (gSDE, 8 envs x 8 steps, 64 features, D=1), PPO
InvertedPendulum-v5 (DiagGaussian, 1 env, 32-sample minibatch, D=1), A2C Acrobot-v1
(Categorical, 16 envs x 5 steps, A=3); float32. Every pair is first checked to give the same
bits. Old and new are timed in alternating rounds on the CPU-time clock
(``time.thread_time``), medians of ROUNDS rounds of REPS calls; ratio = new / old.

    nice -n 5 .venv/bin/python -m benchmarks.bench_dist_fast_paths
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np

from benchmarks import _harness
from benchmarks._harness import announce_replace, atomic_write_text
from minirl.distributions import categorical as new_cat
from minirl.distributions import gaussian as new_gauss
from minirl.distributions import sde as new_sde

REV = "ef020c4921d6bb62218ea874f3b0016eb88df46d"
ROUNDS, REPS = 21, 300
ROOT = Path(__file__).resolve().parent.parent


def _old_modules(rev: str) -> dict[str, types.ModuleType]:
    """categorical, gaussian, sde of ``rev`` as private modules importing each other."""
    mods: dict[str, types.ModuleType] = {}
    for name in ("categorical", "gaussian", "sde"):
        src = subprocess.run(["git", "show", f"{rev}:minirl/distributions/{name}.py"],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout
        for dep in mods:
            src = src.replace(f"from minirl.distributions.{dep} import",
                              f"from _bench_old_{dep} import")
        mod = types.ModuleType(f"_bench_old_{name}")
        sys.modules[mod.__name__] = mod
        exec(compile(src, f"{rev[:7]}:minirl/distributions/{name}.py", "exec"), mod.__dict__)
        mods[name] = mod
    return mods


def _bits(x):
    if isinstance(x, tuple):
        return tuple(_bits(y) for y in x)
    if isinstance(x, np.ndarray):
        return (x.dtype.str, x.shape, x.tobytes())
    return ("obj", type(x).__name__)


def _time(f, reps):
    t = time.thread_time()
    for _ in range(reps):
        f()
    return (time.thread_time() - t) / reps


def _cases(old):
    """(case, call, old thunk, new thunk) for every row."""
    rng = np.random.default_rng(0)
    f32 = np.float32
    rows = []

    # gSDE, A2C Pendulum-v1: act on 8 envs, update on 8 x 8
    F, D = 64, 1
    log_std = np.full((F, D), -2.0, f32)
    for B, what in ((8, "act"), (64, "update")):
        mean = rng.standard_normal((B, D)).astype(f32)
        z = np.tanh(rng.standard_normal((B, F))).astype(f32)
        eps = rng.standard_normal((B, F, D)).astype(f32)
        case = f"gSDE B={B} F={F} D={D}"
        if what == "act":
            def old_act(m=mean, z=z, eps=eps):
                d = old["sde"].StateDependentNoise(m, log_std, z)
                a = d.rsample_with_noise(eps)
                return a, d.log_prob(a)
            rows.append((case, "act (held noise)", old_act,
                         lambda m=mean, z=z, eps=eps: new_sde._act_with_noise(m, log_std, z, eps)))
            continue
        mk_old = lambda m=mean, z=z: old["sde"].StateDependentNoise(m, log_std, z)
        mk_new = lambda m=mean, z=z: new_sde.StateDependentNoise(m, log_std, z)
        a = mk_new().rsample_with_noise(eps)
        rows += _update_rows(case, mk_old, mk_new, a, rng.standard_normal(B).astype(f32) / B,
                             np.full(B, -0.01 / B))

    # DiagGaussian, PPO InvertedPendulum-v5: act on 1 env, update on a 32-sample minibatch
    ls = np.zeros(1, f32)
    m1 = rng.standard_normal((1, 1)).astype(f32)
    r_old, r_new = np.random.default_rng(1), np.random.default_rng(1)

    def old_gauss_act():
        d = old["gaussian"].DiagGaussian(m1, ls)
        a = d.sample(r_old)
        return a, d.log_prob(a)
    rows.append(("DiagGaussian B=1 D=1", "act", old_gauss_act,
                 lambda: new_gauss._sample_log_prob(m1, ls, r_new)))
    m32 = rng.standard_normal((32, 1)).astype(f32)
    a = new_gauss.DiagGaussian(m32, ls).sample(rng)
    rows += _update_rows("DiagGaussian B=32 D=1",
                         lambda: old["gaussian"].DiagGaussian(m32, ls),
                         lambda: new_gauss.DiagGaussian(m32, ls), a,
                         rng.standard_normal(32).astype(f32) / 32, np.full(32, -1e-7 / 32))

    # Categorical, A2C Acrobot-v1: act on 16 envs, update on 16 x 5
    lg16 = rng.standard_normal((16, 3)).astype(f32)
    rc_old, rc_new = np.random.default_rng(2), np.random.default_rng(2)

    def old_cat_act():
        d = old["categorical"].Categorical._trusted(lg16)
        a = d.sample(rc_old)
        return a, d.log_prob(a)
    rows.append(("Categorical B=16 A=3", "act", old_cat_act,
                 lambda: new_cat._sample_log_prob(lg16, rc_new)))
    lg80 = rng.standard_normal((80, 3)).astype(f32)
    a = new_cat.Categorical._trusted(lg80).sample(rng)
    rows += _update_rows("Categorical B=80 A=3",
                         lambda: old["categorical"].Categorical._trusted(lg80),
                         lambda: new_cat.Categorical._trusted(lg80), a,
                         rng.standard_normal(80).astype(f32) / 80, np.full(80, -0.01 / 80))
    return rows


def _update_rows(case, mk_old, mk_new, a, dlogp, dent):
    d_old, d_new = mk_old(), mk_new()
    return [
        (case, "constructor", mk_old, mk_new),
        (case, "log_prob", lambda: d_old.log_prob(a), lambda: d_new.log_prob(a)),
        (case, "entropy", d_old.entropy, d_new.entropy),
        (case, "log_prob_backward", lambda: d_old.log_prob_backward(a, dlogp),
         lambda: d_new.log_prob_backward(a, dlogp)),
        (case, "entropy_backward", lambda: d_old.entropy_backward(dent),
         lambda: d_new.entropy_backward(dent)),
    ]


def main(quick: bool = False) -> None:
    """``quick`` (``python -m benchmarks --quick``): 3 rounds of 20 calls, written to a
    temporary directory (a smoke run)."""
    rounds, reps = (3, 20) if quick else (ROUNDS, REPS)
    old = _old_modules(REV)
    rows = []
    for case, call, f_old, f_new in _cases(old):
        if call != "constructor":   # (a constructor returns an object; its calls are checked)
            assert _bits(f_old()) == _bits(f_new()), (case, call)
        olds, news = [], []
        for _ in range(rounds):
            olds.append(_time(f_old, reps))
            news.append(_time(f_new, reps))
        o, n = statistics.median(olds), statistics.median(news)
        rows.append((case, call, o, n, n / o))
        print(f"{case:24s} {call:18s} {o * 1e6:8.2f} {n * 1e6:8.2f} {n / o:6.3f}", flush=True)
    lines = [__doc__.split("\n")[0], "",
             f"Command: `nice -n 5 .venv/bin/python -m benchmarks.bench_dist_fast_paths` (old = "
             f"{REV[:7]}; CPU time per call, medians of {rounds} alternating rounds of {reps} "
             "calls; shared 2-core machine, one core busy with another benchmark).", "",
             "| case | call | old_us | new_us | ratio |", "|---|---|---|---|---|"]
    lines += [f"| {c} | {k} | {o * 1e6:.2f} | {n * 1e6:.2f} | {r:.3f} |"
              for c, k, o, n, r in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if quick:
        _harness.smoke_results("--quick")
    out = _harness.RESULTS / "dist_fast_paths.md"
    announce_replace(out)
    atomic_write_text(out, text)


if __name__ == "__main__":
    main()
