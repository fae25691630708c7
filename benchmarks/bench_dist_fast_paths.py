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
import warnings
from pathlib import Path

import numpy as np

from benchmarks import _harness
from benchmarks._harness import announce_replace, atomic_write_text
from minirl.distributions import categorical as new_cat
from minirl.distributions import gaussian as new_gauss
from minirl.distributions import sde as new_sde

REV = "ef020c4921d6bb62218ea874f3b0016eb88df46d"
ROUNDS, REPS = 21, 300
SWEEP = 1000          # random cases of the bit-identity sweep (~35 calls each)
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


def _outcome(f):
    try:
        return ("ok", _bits(f()))
    except Exception as e:          # the same error (type and message) counts as the same
        return ("err", type(e).__name__, str(e))


def sweep(old: dict, iterations: int, seed: int = 0) -> tuple[int, list]:
    """Every public method of DiagGaussian, TanhGaussian, StateDependentNoise and
    Categorical, old module vs new, on random float32/float64 inputs of random batch shapes,
    a third of them extreme (scaled by up to 1e200, log stds shifted by up to +-800, NaN
    actions, float64 actions for float32 laws, out-of-range categorical actions):
    ``(calls compared, differences)``; the same bits (type, dtype, shape, bytes) or the
    same error."""
    oc, og, os_ = old["categorical"], old["gaussian"], old["sde"]
    nc, ng, ns = new_cat, new_gauss, new_sde
    diffs = []
    count = [0]

    def check(name, fo, fn):
        count[0] += 1
        a, b = _outcome(fo), _outcome(fn)
        if a != b:
            diffs.append((name, str(a)[:200], str(b)[:200]))

    rng = np.random.default_rng(seed)
    f32, f64 = np.float32, np.float64
    for it in range(iterations):
        dt = (f32, f64)[it % 2]
        shape = [(), (1,), (3,), (2, 3), (64,)][rng.integers(5)]
        D, F, A = int(rng.integers(1, 4)), int(rng.integers(1, 6)), int(rng.integers(1, 6))
        sc = [1.0, 1e-30, 1e20, 1e38, 1e200][rng.integers(5)] if rng.random() < 0.3 else 1.0
        sh = ([0, -2, 5, -50, 50, -120, 100, -400, 400, -800, 800][rng.integers(11)]
              if rng.random() < 0.4 else 0)
        with np.errstate(all="ignore"):
            mean = (sc * rng.standard_normal(shape + (D,))).astype(dt)
            ls_shape = [(D,), (), shape + (D,)][rng.integers(3)]
            ls = (rng.uniform(-1, 0.5, ls_shape) + sh).astype(dt)
            a = (mean + sc * rng.standard_normal(shape + (D,))).astype(dt)
            if rng.random() < 0.05:
                a = a.astype(f64)
            if rng.random() < 0.05:
                a = a.copy()
                a.flat[0] = np.nan
            dlogp = rng.standard_normal(shape).astype((f32, f64)[rng.integers(2)])
            if rng.random() < 0.1:
                dlogp = float(rng.standard_normal())
            L = (rng.uniform(-1, 0.5, (F, D)) + sh).astype(dt)
            z = ((sc * rng.standard_normal(shape + (F,))).astype(dt) if rng.random() < 0.5
                 else np.tanh(rng.standard_normal(shape + (F,))).astype(dt))
            logits = (sc * rng.standard_normal(shape + (A,))).astype(dt)
            eps = rng.standard_normal(mean.shape).astype(dt)
            held = rng.standard_normal(shape + (F, D) if rng.random() < 0.5
                                       else (F, D)).astype(dt)
        actions = rng.integers(0, A, size=shape) - (rng.random() < 0.05)

        # DiagGaussian and TanhGaussian
        check("DiagGaussian()", lambda: og.DiagGaussian(mean, ls).std,
              lambda: ng.DiagGaussian(mean, ls).std)
        if _outcome(lambda: og.DiagGaussian(mean, ls))[0] == "ok":
            do, dn = og.DiagGaussian(mean, ls), ng.DiagGaussian(mean, ls)
            do2, dn2 = og.DiagGaussian(mean + 0.5, ls - 0.3), ng.DiagGaussian(mean + 0.5, ls - 0.3)
            r1, r2 = np.random.default_rng(it), np.random.default_rng(it)
            check("DG.sample", lambda: do.sample(r1), lambda: dn.sample(r2))
            r1, r2 = np.random.default_rng(it), np.random.default_rng(it)
            check("gaussian._sample_log_prob", lambda: (lambda x: (
                x, do.log_prob(x), r1.bit_generator.state["state"]["state"]))(do.sample(r1)),
                  lambda: (*ng._sample_log_prob(mean, ls, r2),
                           r2.bit_generator.state["state"]["state"]))
            check("DG.log_prob", lambda: do.log_prob(a), lambda: dn.log_prob(a))
            check("DG.log_prob_backward", lambda: do.log_prob_backward(a, dlogp),
                  lambda: dn.log_prob_backward(a, dlogp))
            check("DG.entropy", do.entropy, dn.entropy)
            check("DG.entropy_backward", lambda: do.entropy_backward(dlogp),
                  lambda: dn.entropy_backward(dlogp))
            check("DG.kl", lambda: do.kl(do2), lambda: dn.kl(dn2))
            check("DG.kl_backward", lambda: do.kl_backward(do2, dlogp),
                  lambda: dn.kl_backward(dn2, dlogp))
            check("DG.rsample_backward", lambda: do.rsample_backward(eps, a, dlogp),
                  lambda: dn.rsample_backward(eps, a, dlogp))
            to, tn = og.TanhGaussian(mean, ls), ng.TanhGaussian(mean, ls)
            y = np.tanh(a).astype(dt)
            check("TG.log_prob_from_pre_tanh", lambda: to.log_prob_from_pre_tanh(a),
                  lambda: tn.log_prob_from_pre_tanh(a))
            check("TG.log_prob_from_pre_tanh_backward",
                  lambda: to.log_prob_from_pre_tanh_backward(a, dlogp),
                  lambda: tn.log_prob_from_pre_tanh_backward(a, dlogp))
            check("TG.rsample_backward", lambda: to.rsample_backward(eps, a, dlogp),
                  lambda: tn.rsample_backward(eps, a, dlogp))
            check("TG.log_prob", lambda: to.log_prob(y), lambda: tn.log_prob(y))
            check("TG.log_prob_backward", lambda: to.log_prob_backward(y, dlogp),
                  lambda: tn.log_prob_backward(y, dlogp))

        # StateDependentNoise (and the act fast path against the old public path)
        fields = lambda d: (d.gaussian.log_std, d.gaussian.std, d.mean, d.features)
        check("StateDependentNoise()", lambda: fields(os_.StateDependentNoise(mean, L, z)),
              lambda: fields(ns.StateDependentNoise(mean, L, z)))
        check("sde._act_with_noise", lambda: (lambda d: (lambda x: (x, d.log_prob(x)))(
            d.rsample_with_noise(held)))(os_.StateDependentNoise(mean, L, z)),
              lambda: ns._act_with_noise(mean, L, z, held))
        if _outcome(lambda: os_.StateDependentNoise(mean, L, z))[0] == "ok":
            do, dn = os_.StateDependentNoise(mean, L, z), ns.StateDependentNoise(mean, L, z)
            do2 = os_.StateDependentNoise(mean + 1, L, z)
            dn2 = ns.StateDependentNoise(mean + 1, L, z)
            check("SDE.log_prob", lambda: do.log_prob(a), lambda: dn.log_prob(a))
            check("SDE.log_prob_backward", lambda: do.log_prob_backward(a, dlogp),
                  lambda: dn.log_prob_backward(a, dlogp))
            check("SDE.entropy", do.entropy, dn.entropy)
            check("SDE.entropy_backward", lambda: do.entropy_backward(dlogp),
                  lambda: dn.entropy_backward(dlogp))
            check("SDE.kl_backward", lambda: do.kl_backward(do2, dlogp),
                  lambda: dn.kl_backward(dn2, dlogp))
            check("SDE.rsample_with_noise", lambda: do.rsample_with_noise(held),
                  lambda: dn.rsample_with_noise(held))
            check("SDE.rsample_with_noise_backward",
                  lambda: do.rsample_with_noise_backward(held, a),
                  lambda: dn.rsample_with_noise_backward(held, a))

        # Categorical (and the act fast path against the old public path)
        r1, r2 = np.random.default_rng(it), np.random.default_rng(it)
        check("categorical._sample_log_prob", lambda: (lambda d: (lambda x: (
            x, d.log_prob(x), r1.bit_generator.state["state"]["state"]))(d.sample(r1)))(
            oc.Categorical._trusted(logits)),
              lambda: (*nc._sample_log_prob(logits, r2), r2.bit_generator.state["state"]["state"]))
        check("Categorical()", lambda: oc.Categorical(logits).log_probs,
              lambda: nc.Categorical(logits).log_probs)
        if _outcome(lambda: oc.Categorical(logits))[0] == "ok":
            do, dn = oc.Categorical._trusted(logits), nc.Categorical._trusted(logits)
            do2 = oc.Categorical(logits[..., ::-1].copy())
            dn2 = nc.Categorical(logits[..., ::-1].copy())
            check("Cat.log_prob", lambda: do.log_prob(actions), lambda: dn.log_prob(actions))
            check("Cat.log_prob_backward", lambda: do.log_prob_backward(actions, dlogp),
                  lambda: dn.log_prob_backward(actions, dlogp))
            check("Cat.entropy", do.entropy, dn.entropy)
            check("Cat.entropy_backward", lambda: do.entropy_backward(dlogp),
                  lambda: dn.entropy_backward(dlogp))
            check("Cat.kl_backward", lambda: do.kl_backward(do2, dlogp),
                  lambda: dn.kl_backward(dn2, dlogp))
    return count[0], diffs


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
    try:
        old = _old_modules(REV)
    except (OSError, subprocess.CalledProcessError) as e:   # no git, or no such revision
        print(f"bench_dist_fast_paths needs git and revision {REV[:7]} (the old modules): "
              f"skipped ({type(e).__name__})", flush=True)
        return
    iterations = 30 if quick else SWEEP
    with warnings.catch_warnings():      # extreme inputs: both versions' overflow warnings
        warnings.simplefilter("ignore", RuntimeWarning)
        n_calls, diffs = sweep(old, iterations)
    print(f"bit-identity sweep: {n_calls} calls, {len(diffs)} differences", flush=True)
    for d in diffs[:10]:
        print("  DIFF", *d)
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
             f"Bit-identity sweep first (``sweep``, {iterations} random cases): {n_calls} calls of "
             f"every public method, old vs new, {len(diffs)} differences.", "",
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
