"""``python -m benchmarks.learning.estimators [--part all|curves|variance] [--seeds S ...] [--steps N] [--batches M] [--episodes E]``

Two measurements on CartPole-v1, written to ``benchmarks/results/learning_estimators.md``
(plus ``learning_estimators_curves.csv`` and ``learning_estimators_variance.csv``):

1. **Off-policy vs on-policy REINFORCE at equal env steps.** ``reinforce-offpolicy`` (episode
   replay buffer, trajectory importance weights, buffer-mean baseline) against on-policy
   ``reinforce`` twice: with the same estimator family (full return, batch-mean baseline) and
   with its defaults (reward-to-go, learned value baseline). Each run gets the same budget
   of env steps; reported per seed: the last-100-episode mean return at the end, and the
   first step at which it reached 195 and 450.
2. **Gradient variance of the full-return estimator under three baselines.** At fixed policy
   snapshots (on-policy REINFORCE with a learned value baseline, trained for 0, 10k and 40k
   steps, float64), ``M`` independent batches of ``E`` complete episodes are collected with
   the frozen policy; each batch gives these estimates of grad J:
       none          (1/E) sum_i g_i R_i
       mean          (1/E) sum_i g_i (R_i - mean_j R_j)     (batch mean, as REINFORCE "mean")
       mean-loo      the same with mean_{j != i} R_j (unbiased); "mean" is exactly
                     (1 - 1/E) "mean-loo", so biased by that factor, variance by its square
       learned       (1/E) sum_i sum_t grad log pi(a_t|s_t) (R_i - V(s_t))  (REINFORCE "value")
       optimal       (1/E) sum_i g_i (R_i - b_i), b_ij leave-one-out E[g_j^2 R]/E[g_j^2] per
                     coordinate (REINFORCE "optimal", ``optimal_baseline_gradient``)
       optimal-prev  b_j = E[g_j^2 R]/E[g_j^2] estimated on the *previous* batch (unbiased,
                     ``variance_optimal_baseline``'s formula on independent data)
   with g_i = sum_t grad log pi(a_t|s_t) of episode i (policy parameters only). Reported:
   the total variance tr Cov over the M batches, and its ratio to "none".

Threads are pinned to one before NumPy is imported. Single machine, same command for all
numbers; medians where several seeds.

Results are never lost or overwritten silently: the CSVs and the markdown are written
atomically (a temporary file renamed over the old one), the curves CSV after every run; a run
replaces only the (run, seed) rows of the curves and the (trained_steps, baseline) rows of the
variance it measured, saying so on stdout, and keeps the others. ``--steps``, ``--snapshots``,
``--batches`` or ``--episodes`` other than the defaults (the documented run) make a smoke run:
its files go to a temporary directory (printed), not to benchmarks/results.
"""
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks._harness import (atomic_write_text, read_csv_rows, smoke_results,  # noqa: E402
                                store_rows)
from minirl.algos.offpolicy_reinforce import OffPolicyREINFORCE, OffPolicyREINFORCEConfig  # noqa: E402,E501
from minirl.algos.reinforce import REINFORCE, REINFORCEConfig  # noqa: E402
from minirl.logger import TrainingLog  # noqa: E402
from minirl.objectives.policy_gradient import optimal_baseline_gradient  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "results"
ENV = "CartPole-v1"
GAMMA = 0.99
BASELINES = ("none", "mean", "mean-loo", "learned", "optimal", "optimal-prev")

RUNS = {
    "offpolicy (buffer, trajectory IS, mean b)":
        lambda: (OffPolicyREINFORCE, OffPolicyREINFORCEConfig(gamma=GAMMA)),
    "on-policy, full return, mean b":
        lambda: (REINFORCE, REINFORCEConfig(gamma=GAMMA, reward_to_go=False, baseline="mean")),
    "on-policy defaults (reward-to-go, learned b)":
        lambda: (REINFORCE, REINFORCEConfig(gamma=GAMMA)),
}


def learning_curves(seeds, steps, on_row=None):
    """One row per (run, seed); ``on_row(row)`` is called as each one is done."""
    rows = []
    for name, make in RUNS.items():
        for seed in seeds:
            algo, cfg = make()
            log = TrainingLog(None, fields=algo.log_fields)
            wall = time.perf_counter()
            agent = algo(ENV, cfg, seed=seed).learn(steps, log)
            wall = time.perf_counter() - wall
            first = {th: log.first_reached(th) for th in (195.0, 450.0)}
            rows.append({"run": name, "seed": seed, "steps": agent.total_steps,
                         "final_return_mean_100": round(log.recent_mean, 1),
                         "first_step_195": first[195.0][0] if first[195.0] else "",
                         "first_step_450": first[450.0][0] if first[450.0] else "",
                         "wall_s": round(wall, 1)})
            print(rows[-1], flush=True)
            if on_row is not None:
                on_row(rows[-1])
    return rows


def _episodes(agent, num, rng, env):
    """``num`` complete episodes with the frozen policy: list of (obs [L, d], actions [L],
    rewards [L])."""
    out = []
    for _ in range(num):
        obs, _ = env.reset(seed=int(rng.integers(2**31 - 1)))
        O, A, R = [], [], []
        done = False
        while not done:
            x = np.asarray(obs, dtype=agent.net.dtype)[None]
            a, _, _ = agent.net.act(agent.params, x, rng)
            O.append(x[0])
            A.append(a[0])
            obs, r, term, trunc, _ = env.step(int(a[0]))
            R.append(r)
            done = term or trunc
        out.append((np.array(O), np.array(A), np.array(R, dtype=np.float64)))
    return out


def _score_vectors(agent, obs, actions, dlogp):
    """sum_t dlogp_t grad_theta log pi(a_t|s_t) over the policy slice (one backward pass)."""
    net = agent.net
    dist, _, cache = net.forward(agent.params, obs)
    # net.backward gives the gradient of L with dL/dlogp = dlogp: exactly sum_t dlogp_t score_t
    return net.backward(agent.params, cache, dist.log_prob_backward(actions, dlogp))[net.pi_slice]


def batch_estimates(agent, episodes, prev=None):
    """The estimates of grad J from one batch of episodes (see the module docstring), and
    ``(g, R)`` for the next batch's "optimal-prev". ``prev``: the previous batch's (g, R)."""
    g, h, R = [], [], []
    for obs, actions, rewards in episodes:
        L = len(rewards)
        R.append(float(rewards @ GAMMA ** np.arange(L)))
        g.append(_score_vectors(agent, obs, actions, np.ones(L)))
        h.append(_score_vectors(agent, obs, actions, agent.net.value(agent.params, obs)))
    g, h, R = np.array(g), np.array(h), np.array(R)
    E = len(R)
    out = {"none": (g * R[:, None]).mean(0),
           "mean": (g * (R - R.mean())[:, None]).mean(0),
           "mean-loo": (g * (R - (R.sum() - R) / (E - 1))[:, None]).mean(0),
           "learned": (g * R[:, None] - h).mean(0),
           "optimal": optimal_baseline_gradient(g, R)[0]}
    if prev is not None:
        gp, Rp = prev
        den = (gp**2).sum(0)
        b = np.divide((gp**2 * Rp[:, None]).sum(0), den, out=np.zeros(g.shape[1]), where=den > 0)
        out["optimal-prev"] = (g * (R[:, None] - b)).mean(0)
    return out, (g, R)


def gradient_variance(snapshots, batches, episodes, seed=0):
    rows = []
    cfg = REINFORCEConfig(gamma=GAMMA, reward_to_go=False, baseline="value", dtype="float64")
    agent = REINFORCE(ENV, cfg, seed=seed)
    trained = 0
    env = gym.make(ENV)
    for snap in snapshots:
        if snap > trained:
            agent.learn(snap - trained)
            trained = agent.total_steps
        rng = np.random.default_rng([seed, snap])
        est = {k: [] for k in BASELINES}
        lengths = []
        _, prev = batch_estimates(agent, _episodes(agent, episodes, rng, env))  # for "-prev"
        for _ in range(batches):
            eps = _episodes(agent, episodes, rng, env)
            lengths += [len(e[2]) for e in eps]
            values, prev = batch_estimates(agent, eps, prev)
            for k, v in values.items():
                est[k].append(v)
        var = {k: float(np.var(np.array(v), axis=0, ddof=1).sum()) for k, v in est.items()}
        mean_none = np.mean(est["none"], axis=0)
        for k in est:
            m = np.mean(est[k], axis=0)
            rows.append({"trained_steps": trained,
                         "mean_episode_length": round(float(np.mean(lengths)), 1),
                         "baseline": k, "total_variance": var[k],
                         "ratio_to_none": var[k] / var["none"],
                         "cosine_mean_vs_none": float(m @ mean_none / (np.linalg.norm(m)
                                                      * np.linalg.norm(mean_none)))})
            print(rows[-1], flush=True)
    env.close()
    return rows


def _rank(seq, x):
    return seq.index(x) if x in seq else len(seq)


def store_curve_row(path, row) -> None:
    """Store one (run, seed) row atomically: other rows kept, an old row of the same run and
    seed replaced with a line saying so; rows ordered by run (as in RUNS), then seed."""
    store_rows(path, [row], ("run", "seed"),
               sort_key=lambda r: (_rank(list(RUNS), r["run"]), int(r["seed"])))


def store_variance_rows(path, rows) -> None:
    """Store a run's (trained_steps, baseline) rows atomically (the same rule)."""
    store_rows(path, rows, ("trained_steps", "baseline"),
               sort_key=lambda r: (int(r["trained_steps"]), _rank(BASELINES, r["baseline"])))


def write_markdown(curves, variance, batches, episodes):
    commands = sorted({r["command"] for r in curves} | {r["command"] for r in variance})
    lines = ["# Estimators on CartPole-v1: off-policy REINFORCE and the optimal baseline", "",
             "Produced by (one thread, gamma = %g):" % GAMMA, ""]
    lines += [f"    {c}" for c in commands] + ["",
             "## Off-policy vs on-policy REINFORCE at equal env steps", "",
             "| run | seeds | final mean return (last 100), per seed | median | first step "
             "reaching 195 | first step reaching 450 | wall s (median) |",
             "|---|---|---|---|---|---|---|"]
    for name in RUNS:
        rs = [r for r in curves if r["run"] == name]
        if not rs:                      # not run yet (a smoke run's other part)
            continue
        finals = [r["final_return_mean_100"] for r in rs]
        lines.append(
            f"| {name} | {len(rs)} | {', '.join(str(x) for x in finals)} | "
            f"{np.median(finals):.1f} | {', '.join(str(r['first_step_195'] or '-') for r in rs)} | "
            f"{', '.join(str(r['first_step_450'] or '-') for r in rs)} | "
            f"{np.median([r['wall_s'] for r in rs]):.1f} |")
    budget = curves[0]["steps"] if curves else "-"
    lines += ["", f"Budget: {budget} env steps per run (whole iterations, so the runs end"
              " within one iteration of each other; the exact counts are in "
              "learning_estimators_curves.csv).", "",
              "## Gradient variance of the full-return estimator", "",
              f"{batches} independent batches of {episodes} complete episodes per snapshot, "
              "frozen policy; total variance = sum over policy parameters of the sample "
              "variance of the batch estimate. The baselines are defined in the module docstring "
              "of `benchmarks/learning/estimators.py`. `mean` is exactly (1 - 1/E) times `mean-loo` "
              f"(E = {episodes}: R_i - mean_j R_j = (1 - 1/E)(R_i - mean_(j != i) R_j)), so its "
              "mean is (1 - 1/E) grad J and its variance (1 - 1/E)^2 times `mean-loo`'s; "
              "`mean-loo`, `optimal` (leave-one-out, as "
              "`REINFORCE(baseline=\"optimal\")`) and `optimal-prev` (b from the previous "
              "batch) are unbiased.", "",
              "| policy trained for (steps) | mean episode length | baseline | total variance "
              "| ratio to no baseline | cosine of mean estimate with no-baseline mean |",
              "|---|---|---|---|---|---|"]
    for r in variance:
        lines.append(f"| {r['trained_steps']} | {r['mean_episode_length']} | {r['baseline']} | "
                     f"{r['total_variance']:.4g} | {r['ratio_to_none']:.3f} | "
                     f"{r['cosine_mean_vs_none']:.3f} |")
    out = RESULTS / "learning_estimators.md"
    atomic_write_text(out, "\n".join(lines) + "\n")
    return out


def _read_csv(path):
    rows = read_csv_rows(path)
    for r in rows:
        for k, v in r.items():
            try:
                r[k] = float(v) if "." in v or "e" in v else int(v)
            except ValueError:
                pass
    return rows


def main(argv=None):
    global RESULTS
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=("all", "curves", "variance"), default="all",
                   help="run one part; the other is read from its CSV")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--snapshots", type=int, nargs="+", default=[0, 10_000, 40_000])
    p.add_argument("--batches", type=int, default=30)
    p.add_argument("--episodes", type=int, default=10)
    args = p.parse_args(argv)
    command = "python -m benchmarks.learning.estimators " + shlex.join(sys.argv[1:] if argv is None
                                                                       else argv)
    command = command.strip()
    sizes = {k: getattr(args, k) for k in ("steps", "snapshots", "batches", "episodes")}
    if sizes != {k: p.get_default(k) for k in sizes}:   # smoke runs never touch the results
        RESULTS = smoke_results("--steps/--snapshots/--batches/--episodes other than the "
                                "defaults")
    RESULTS.mkdir(exist_ok=True)
    paths = (RESULTS / "learning_estimators_curves.csv",
             RESULTS / "learning_estimators_variance.csv")
    if args.part in ("all", "curves"):
        learning_curves(args.seeds, args.steps,
                        on_row=lambda r: store_curve_row(paths[0], {**r, "command": command}))
    curves = _read_csv(paths[0])
    if args.part in ("all", "variance"):
        variance = [{**r, "command": command}
                    for r in gradient_variance(args.snapshots, args.batches, args.episodes)]
        store_variance_rows(paths[1], variance)
    variance = _read_csv(paths[1])
    print(write_markdown(curves, variance, args.batches, args.episodes))


if __name__ == "__main__":
    main()
