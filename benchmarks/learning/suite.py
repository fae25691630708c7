"""``python -m benchmarks.learning.suite``: every agent on the issue's environment suite with its
preset, side by side with Stable-Baselines3 (RL-Zoo's tuned settings) and RL-Zoo's published
results.

    python -m benchmarks.learning.suite                         # every row, 3 seeds (days!)
    python -m benchmarks.learning.suite --algos ppo a2c --envs CartPole-v1 Acrobot-v1
    python -m benchmarks.learning.suite --algos ppo --envs Pendulum-v1 --peer   # + SB3
    python -m benchmarks.learning.suite --table-only            # rebuild the markdown
    python -m benchmarks.learning.suite --cpu-only --algos a2c --envs Acrobot-v1 --baseline HEAD~1

Rows are the (algorithm, environment) pairs of ``minirl.presets.TABLE`` on the suite's
environments (``ENVS``), for the algorithms registered in ``minirl.algos``. Each run trains
``Algo(env, Config(**preset), seed)`` for the row's budget (the source's ``n_timesteps``;
``--steps`` overrides it for smoke runs, whose CSV and table go to a temporary directory,
never ``benchmarks/results``), then reports

* ``final_return``: mean over ``--eval-episodes`` deterministic episodes on a fresh env
  (seeds 10000, 10001, ...), the score RL-Zoo's benchmark reports;
* ``train_return_100``: the mean of the last 100 training episodes;
* steps/s and CPU seconds of the training (``time.process_time`` of this process: the sync
  vector env runs in it too, and BLAS/torch are pinned to one thread).

``--peer`` also trains Stable-Baselines3 (PPO/A2C) with RL-Zoo's settings for the row (the
preset translated back, plus what minirl lacks: gSDE, ``ortho_init=False``, RMSprop for A2C,
VecNormalize for ``normalize``), evaluated the same way, seed by seed right after minirl's
run of that seed (so both CPU times are measured under the same load). The second
comparison column is RL-Zoo's published result (``minirl.presets.RL_ZOO_RESULTS``: one
trained agent, often on an older environment version, named in the table).

Results: one CSV row per (implementation, algo, env, seed) in ``--csv`` (default
``benchmarks/results/learning_suite.csv``; appended, de-duplicated by key), and
``benchmarks/results/learning_suite.md`` built from every ``learning_suite*.csv`` with
``--notes`` (default ``benchmarks/results/learning_suite_notes.md``) appended. Separate jobs
write separate CSVs; for each (implementation, algo, env) the newest CSV that has rows for it
supersedes the older ones (``supersede``: newest by last commit, a file with uncommitted
changes counts as newest), e.g. ``learning_suite_sde.csv``'s MountainCarContinuous rows replace
the earlier no-gSDE rows. Each table row's verdict (``verdict``) requires minirl's mean return
>= the peer's mean - std over its seeds AND >= RL-Zoo's published mean - std, and minirl's CPU
time <= 1/3 of the peer's; the markdown names the criterion that failed.
"""
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import csv  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from minirl.algos import ALGOS  # noqa: E402
from minirl.logger import TrainingLog  # noqa: E402
from minirl.presets import RL_ZOO_RESULTS, TABLE, find  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "results"
CSV_PATH = RESULTS / "learning_suite.csv"
MD_PATH = RESULTS / "learning_suite.md"
NOTES_PATH = RESULTS / "learning_suite_notes.md"   # appended to the table (--notes)
ENVS = ["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0",
        "Pendulum-v1", "LunarLander-v3", "LunarLanderContinuous-v3", "BipedalWalker-v3",
        "InvertedPendulum-v5", "Hopper-v5", "HalfCheetah-v5"]
COLUMNS = ["impl", "algo", "env", "seed", "steps", "budget", "final_return", "final_return_std",
           "train_return_100", "wall_s", "cpu_s", "steps_per_s", "command"]
EVAL_SEED = 10_000
MIN_SEEDS = 3          # seeds each side needs before a row's verdict can be "met"

# What RL-Zoo's row has that the minirl preset cannot express (for the SB3 peer only), and the
# zoo's own Pendulum PPO row (minirl's preset is a documented no-gSDE alternative).
ZOO_PEER = {
    ("ppo", "Pendulum-v1"): dict(n_envs=4, n_steps=1024, gae_lambda=0.95, gamma=0.9, n_epochs=10,
                                 learning_rate=1e-3, clip_range=0.2, use_sde=True,
                                 sde_sample_freq=4, batch_size=64, normalize=False),
    ("ppo", "MountainCarContinuous-v0"): dict(use_sde=True, ortho_init=False),
    ("ppo", "Hopper-v5"): dict(ortho_init=False),
    ("ppo", "HalfCheetah-v5"): dict(ortho_init=False),
    ("a2c", "Pendulum-v1"): dict(use_sde=True, ortho_init=False),
    ("a2c", "LunarLanderContinuous-v3"): dict(use_sde=True, ortho_init=False),
    ("a2c", "MountainCarContinuous-v0"): dict(use_sde=True, sde_sample_freq=16,
                                              ortho_init=False),
    ("a2c", "BipedalWalker-v3"): dict(use_sde=True, ortho_init=False),
}


def suite_rows(algos=None, envs=None):
    """The preset rows of the suite: (algo, env) on ENVS for registered algorithms."""
    return [p for p in TABLE if p.env in ENVS and p.algo in ALGOS
            and (not algos or p.algo in algos) and (not envs or p.env in envs)]


def _evaluate_fn(predict, env_id: str, episodes: int) -> tuple[float, float]:
    import gymnasium as gym
    env = gym.make(env_id)
    returns = []
    for k in range(episodes):
        obs, _ = env.reset(seed=EVAL_SEED + k)
        done, total = False, 0.0
        while not done:
            obs, r, term, trunc, _ = env.step(predict(obs))
            total += float(r)
            done = term or trunc
        returns.append(total)
    env.close()
    return float(np.mean(returns)), float(np.std(returns))


def run_minirl(algo: str, env: str, seed: int, steps: int, episodes: int,
               train_only: bool = False):
    """One seed's training and deterministic evaluation (a CSV row's numbers); with
    ``train_only`` only the training's CPU seconds."""
    cls = ALGOS[algo]
    preset = find(algo, env)
    agent = cls(env, cls.Config(**preset.overrides), seed=seed, env_kwargs=preset.env_kwargs)
    log = TrainingLog(None, fields=cls.log_fields)
    cpu, wall = time.process_time(), time.perf_counter()
    agent.learn(steps, callback=log)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if train_only:
        return cpu
    returns = agent.evaluate(episodes, deterministic=True, seed=EVAL_SEED)
    return {"steps": agent.total_steps, "final_return": round(float(returns.mean()), 2),
            "final_return_std": round(float(returns.std()), 2),
            "train_return_100": round(log.recent_mean, 2), "wall_s": round(wall, 1),
            "cpu_s": round(cpu, 1), "steps_per_s": round(agent.total_steps / wall)}


def sb3_kwargs(algo: str, env: str) -> tuple[dict, dict]:
    """(model kwargs, run options) for Stable-Baselines3 from the preset (RL-Zoo's names)."""
    o = dict(find(algo, env).overrides)
    extra = dict(ZOO_PEER.get((algo, env), {}))
    run = {"n_envs": o.get("num_envs", 1),
           "normalize": o.get("normalize_obs", False) or o.get("normalize_reward", False)}
    kw, pk = {}, {}
    names = {"num_steps": "n_steps", "minibatch_size": "batch_size", "num_epochs": "n_epochs",
             "lam": "gae_lambda", "gamma": "gamma", "ent_coef": "ent_coef",
             "vf_coef": "vf_coef", "max_grad_norm": "max_grad_norm",
             "norm_adv": "normalize_advantage"}
    for k, v in o.items():
        if k in names:
            kw[names[k]] = v
    lr = o.get("lr", 3e-4 if algo == "ppo" else 7e-4)
    kw["learning_rate"] = (lambda f, lr=lr: f * lr) if o.get("anneal_lr") else lr
    if algo == "ppo" and "clip_eps" in o:
        c = o["clip_eps"]
        kw["clip_range"] = (lambda f, c=c: f * c) if o.get("anneal_clip") else c
    if "log_std_init" in o:
        pk["log_std_init"] = o["log_std_init"]
    if o.get("hidden_sizes"):
        pk["net_arch"] = dict(pi=list(o["hidden_sizes"]), vf=list(o["hidden_sizes"]))
    if o.get("activation") == "relu":
        import torch
        pk["activation_fn"] = torch.nn.ReLU
    for k in ("n_envs", "normalize"):
        if k in extra:
            run[k] = extra.pop(k)
    if "ortho_init" in extra:
        pk["ortho_init"] = extra.pop("ortho_init")
    kw.update(extra)
    if pk:
        kw["policy_kwargs"] = pk
    return kw, run


def _build_sb3(algo: str, env: str, seed: int):
    """(model, vec env, run options): Stable-Baselines3 with RL-Zoo's settings, one thread."""
    import torch
    from stable_baselines3 import A2C as SB3A2C
    from stable_baselines3 import PPO as SB3PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    torch.set_num_threads(1)
    kw, run = sb3_kwargs(algo, env)
    venv = make_vec_env(env, n_envs=run["n_envs"], seed=seed)
    if run["normalize"]:
        venv = VecNormalize(venv, gamma=kw.get("gamma", 0.99))
    model = {"ppo": SB3PPO, "a2c": SB3A2C}[algo]("MlpPolicy", venv, seed=seed, device="cpu",
                                                 **kw)
    return model, venv, run


def run_sb3(algo: str, env: str, seed: int, steps: int, episodes: int,
            train_only: bool = False):
    """As ``run_minirl``, for Stable-Baselines3 with RL-Zoo's settings (``sb3_kwargs``)."""
    model, venv, run = _build_sb3(algo, env, seed)
    returns = []
    cpu, wall = time.process_time(), time.perf_counter()
    model.learn(steps)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if train_only:
        return cpu
    for info in model.ep_info_buffer:
        returns.append(info["r"])
    if run["normalize"]:
        venv.training = False

    def predict(obs):
        x = venv.normalize_obs(obs[None]) if run["normalize"] else obs[None]
        return model.predict(x, deterministic=True)[0][0]

    mean, std = _evaluate_fn(predict, env, episodes)
    return {"steps": model.num_timesteps, "final_return": round(mean, 2),
            "final_return_std": round(std, 2),
            "train_return_100": round(float(np.mean(returns)), 2) if returns else "",
            "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "steps_per_s": round(model.num_timesteps / wall)}


def _file_time(path: Path) -> float:
    """When ``path``'s rows were produced: its last commit's time, or its modification time if it
    has uncommitted changes or was never committed (so a file still being written is newest)."""
    import subprocess
    root, rel = RESULTS.parents[1], os.path.relpath(path, RESULTS.parents[1])
    try:
        dirty = subprocess.run(["git", "status", "--porcelain", "--", rel], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
        stamp = subprocess.run(["git", "log", "-1", "--format=%ct", "--", rel], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        dirty, stamp = "?", ""
    return path.stat().st_mtime if dirty or not stamp else float(stamp)


def _read(path: Path | None = None) -> list[dict]:
    """Rows of ``path``, or of every learning_suite*.csv (separate jobs write separate files),
    each tagged with its file in ``row["_file"]``."""
    rows = []
    for p in ([path] if path else sorted(RESULTS.glob("learning_suite*.csv"))):
        if p.exists():
            with open(p, newline="") as f:
                rows += [dict(r, _file=p.name) for r in csv.DictReader(f) if "impl" in r]
    return rows


def _write(rows: list[dict], path: Path) -> None:
    """Rows keyed by (impl, algo, env, seed, budget), the last one of a key kept (a rerun's),
    which is said on stdout; written atomically (benchmarks/_harness.py)."""
    from benchmarks._harness import atomic_write_csv

    keyed = {}
    for r in rows:
        key = (r["impl"], r["algo"], r["env"], str(r["seed"]), str(r["budget"]))
        if key in keyed:
            print(f"replacing the {key[0]} {key[1]} {key[2]} seed {key[3]} row of {path}")
        keyed[key] = r
    atomic_write_csv(path, [{c: r.get(c, "") for c in COLUMNS} for r in keyed.values()],
                     COLUMNS)


def supersede(rows: list[dict], file_time=None) -> tuple[list[dict], list[dict]]:
    """(kept rows, superseded rows): for each (impl, algo, env), only the rows of the newest file
    that has any (newest by ``file_time(name)``, default: last commit time, see ``_file_time``)
    are kept; the same key's rows in older files are returned as superseded."""
    file_time = file_time or (lambda name: _file_time(RESULTS / name))
    times = {name: file_time(name) for name in {r["_file"] for r in rows}}
    newest: dict[tuple, str] = {}
    for r in rows:
        key, f = (r["impl"], r["algo"], r["env"]), r["_file"]
        if key not in newest or (times[f], f) > (times[newest[key]], newest[key]):
            newest[key] = f
    kept = [r for r in rows if r["_file"] == newest[(r["impl"], r["algo"], r["env"])]]
    old = [dict(r, _by=newest[(r["impl"], r["algo"], r["env"])]) for r in rows
           if r["_file"] != newest[(r["impl"], r["algo"], r["env"])]]
    return kept, old


def _stat(rs: list[dict], key: str = "final_return") -> tuple[float, float, list[float]]:
    v = [float(r[key]) for r in rs if r.get(key, "") != ""]
    return (float(np.mean(v)), float(np.std(v)), v) if v else (np.nan, np.nan, [])


def verdict(minirl: list[float], peer: list[float], zoo: tuple | None,
            cpu_ratio: float | None) -> tuple[bool, list[str]]:
    """(met, one line per criterion) for one table row. Three criteria, all required:

    * peer: minirl's mean over seeds >= the peer's mean - std over its seeds (SB3 with RL-Zoo's
      settings, same budget, run here);
    * RL-Zoo: minirl's mean >= the published mean - std (RL-Zoo's benchmark.md: one agent's
      deterministic episodes);
    * CPU: minirl's median training CPU time <= 1/3 of the peer's.

    A criterion without data (peer not run or fewer than ``MIN_SEEDS`` seeds, no published
    row) is reported as not checked and the row is not met.
    """
    m = float(np.mean(minirl)) if minirl else np.nan
    lines, ok = [], len(minirl) >= MIN_SEEDS
    if not ok:
        lines.append(f"minirl: {len(minirl)} of {MIN_SEEDS} seeds")
    if peer and len(peer) < MIN_SEEDS:
        ok = False
        lines.append(f"peer partial: {len(peer)} of {MIN_SEEDS} seeds, not compared")
    elif peer:
        thr = float(np.mean(peer) - np.std(peer))
        good = m >= thr
        ok &= good
        lines.append(f"peer {'met' if good else 'MISSED'}: {m:.1f} "
                     f"{'>=' if good else '<'} {np.mean(peer):.1f} - {np.std(peer):.1f} = "
                     f"{thr:.1f}")
    else:
        ok = False
        lines.append("peer not run")
    if zoo:
        thr = zoo[0] - zoo[1]
        good = m >= thr
        ok &= good
        lines.append(f"RL-Zoo {'met' if good else 'MISSED'}: {m:.1f} "
                     f"{'>=' if good else '<'} {zoo[0]:.1f} - {zoo[1]:.1f} = {thr:.1f}")
    else:
        ok = False
        lines.append("no RL-Zoo result")
    if cpu_ratio is not None and np.isfinite(cpu_ratio) and len(peer) >= MIN_SEEDS:
        good = cpu_ratio <= 1 / 3
        ok &= good
        lines.append(f"CPU {'met' if good else 'MISSED'}: {cpu_ratio:.2f} of the peer's "
                     f"{'<=' if good else '>'} 0.33")
    return ok, lines


# Why a row falls short, (algo, env) -> text; measured or argued in learning_suite_notes.md.
REASONS: dict[tuple[str, str], str] = {
    ("a2c", "Acrobot-v1"):
        "return: 0.9 below the peer's mean - std over seeds 0-2 and within RL-Zoo's; seed 1's "
        "-90.9 is one long episode among ten (episode std 44.5). Over seeds 0-9 (seeds 3-9: "
        "the same command with --seeds 3 4 5 6 7 8 9 --csv learning_seeds_a2c_acrobot.csv) "
        "minirl's -82.8 +- 5.8 is within the peer's -80.8 +- 3.8 (-84.6), so the 3-seed gap is "
        "noise; minirl uses Adam where the zoo uses RMSprop. "
        "CPU: the Acrobot env both libraries step costs ~0.25 of SB3's training time "
        "by itself, so 1/3 would leave minirl's own work ~1.2 CPU s per 100k steps; the "
        "bit-identical per-call cuts of the collection path made minirl 5.8% cheaper here "
        "(interleaved A/B) but SB3 on a quiet machine is faster too (50 s, 0.55; 75 s and "
        "0.47 at load 9-31); the later cuts of the whole on-policy path left Acrobot where it "
        "was (1.006 of the earlier code's CPU by A/B; re-run seed by seed at load 4-6: 31.8 s "
        "against 64.5 s, 0.49, learning_suite_a2c_acrobot_fast2.csv): not reachable, see the "
        "notes",
    ("ppo", "MountainCarContinuous-v0"):
        "bimodal at RL-Zoo's 20k-step budget: a seed either reaches the flag in its first "
        "episodes or settles short of it, so three seeds cannot tell the two libraries apart. "
        "Over seeds 0-9 (seeds 3-9: learning_sde_ppo_mcc_seeds3-9.csv and "
        "learning_sde_sb3_ppo_mcc_seeds3-9.csv, same commands with --seeds 3 4 5 6 7 8 9) the "
        "means are equal: minirl 33.4 +- 71.9 (the flag reached in 6 of 10 seeds), SB3 33.3 "
        "+- 57.2 (5 of 10; its seed 0 reached it at 74), which meets the peer criterion; RL-Zoo's 88.3 is one trained agent, "
        "a success, and both libraries' 10-seed means miss it",
    ("a2c", "LunarLander-v3"):
        "RL-Zoo's 155.8 is missed by both libraries at its 200k-step budget (SB3 with the "
        "zoo's settings here: 53, 2, 7): A2C is far from converged on LunarLander after 200k "
        "steps (every seed's ten evaluation episodes spread by 118-158), and the zoo's number "
        "is one agent on LunarLander-v2; minirl is above the peer on every seed but one",
    ("a2c", "MountainCar-v0"):
        "return: level with the peer (-124.8 vs -119.2 +- 6.1: 0.6 below its mean - std; "
        "seeds -127/-125/-123 against -117/-128/-113) and within RL-Zoo's spread. CPU: the env "
        "dominates: gymnasium's MountainCar step through its SyncVectorEnv took 44% of "
        "minirl's instrumented training time with this preset (16 envs x 5 steps; "
        "learning_suite_profile_a2c_mountaincar.md, python -m benchmarks.learning.suite "
        "--profile --algos a2c --envs MountainCar-v0 --steps 100000 --repeats 1 --profile-out "
        "learning_suite_profile_a2c_mountaincar.md), an env cost SB3 pays too. The "
        "bit-identical per-call cuts of the on-policy path (notes) brought the ratio from 0.48 "
        "to 0.36 (learning_suite_a2c_mountaincar_fast.csv: minirl 32.1 s against SB3 89.1 s "
        "per 1M steps, seed by seed at load 4-6; 0.878 of the earlier code's CPU by A/B)",
    ("a2c", "Pendulum-v1"):
        "return: level with RL-Zoo and above the peer (minirl -134/-133/-139; SB3's seed 0 "
        "stayed at -819, its seeds 1-2 reached -143/-131). CPU: per-vector-step overhead, as "
        "on the other A2C rows: in learning_suite_profile_a2c_pendulum.md (100k steps, both "
        "instrumented) minirl's vector env takes 1.35 s and its policy forward + gSDE sample "
        "132 us per 8-env step; a third of SB3's 11.17 s leaves minirl 3.72 - 1.35 = 2.37 s "
        "for all of its own work against 4.13 s now",
    ("ppo", "HalfCheetah-v5"):
        "returns met: minirl's 3 seeds (4840, 6520, 6158) are above the SB3 peer's (5927, "
        "5039, 4978; run in a later session with --peer-only, learning_suite_ppo_halfcheetah.csv) "
        "and level with RL-Zoo's 5819 +- 664 (one HalfCheetah-v3 agent). CPU: 0.42 (692 s "
        "against 1641 s per seed, medians; the two sides ran in different sessions at load "
        "4-10, not seed by seed, and minirl's before the later bit-identical cuts of the "
        "on-policy path): the heaviest row per step -- 312k minibatch updates of two 256x256 "
        "ReLU MLPs (20 epochs of 64-sample minibatches) -- not profiled yet",
    ("ppo", "InvertedPendulum-v5"):
        "return: minirl's final policy collapsed in seeds 0 and 2 (28.1, 19.2), SB3's in seed 2 "
        "(14.6), and it is this preset's dynamics, not an implementation difference "
        "(learning_suite_invpend_diagnosis.md: minirl's update reproduces SB3's to float32 "
        "rounding on the same batches): once the pendulum is balanced, normalized advantages "
        "keep shrinking the policy std with no entropy bonus to stop it (log_std 0 -> -6.5 in "
        "both libraries), so the same Adam steps become policy changes of KL 0.1 to >10 per "
        "update that break the controller every few 100k steps, and with a std of ~0.0015 it "
        "relearns slowly; the collapsed runs broke down shortly before 1M (955k, 961k; "
        "target_kl 0.01, not the zoo's setting, held 1000 in seed 2 of both libraries). "
        "CPU: 0.40 of SB3's in these runs; with the later bit-identical cuts of the on-policy "
        "path (0.70 of the earlier code's CPU by A/B) seeds 0 and 1 re-ran to the same "
        "returns at 223 and 239 CPU s against SB3's 849 and 830 s (0.28 of the medians; "
        "learning_cpu_ppo_invpend.csv, the same command with --csv "
        "learning_suite_ppo_invpend_fast.csv, stopped for time before its third seed, so it "
        "stays out of the table), which would meet the CPU criterion",
    ("a2c", "MountainCarContinuous-v0"):
        "return level with the peer and RL-Zoo. CPU: met at 0.27 since the second round of "
        "bit-identical cuts (learning_suite_a2c_mcc_fast2.csv; 0.39 before, notes)",
}

# The families that have their own learning benchmarks: the suite points to their tables instead
# of duplicating the runs.
OWN_BENCHMARKS = {
    "dqn": ("benchmarks/learning/dqn.py", "benchmarks/results/learning_dqn.md"),
    "sac": ("benchmarks/learning/sac.py", "benchmarks/results/learning_sac.md"),
    "ars": ("benchmarks/learning/gradient_free.py",
            "benchmarks/results/learning_gradient_free.md"),
}


def write_table(notes: str = "") -> Path:
    """learning_suite.md from every learning_suite*.csv: one line per (algo, env, budget)."""
    rows, superseded = supersede(_read())
    groups: dict[tuple, dict[str, list]] = {}
    for r in rows:
        groups.setdefault((r["algo"], r["env"], int(r["budget"])), {}).setdefault(
            r["impl"], []).append(r)
    lines = ["# Environment suite: minirl with presets vs Stable-Baselines3 (RL-Zoo settings) "
             "and RL-Zoo's published results", "",
             "Generated by `python -m benchmarks.learning.suite --table-only --notes "
             "benchmarks/results/learning_suite_notes.md` from every "
             "`benchmarks/results/learning_suite*.csv`. For each (implementation, algo, env) "
             "only the rows of the newest CSV that has that key are used (newest by last "
             "commit; uncommitted files count as newest); rows it replaces are listed under "
             "*Superseded rows*.", "",
             "Final return: mean of 10 deterministic episodes per seed (seeds 10000+), then "
             "mean +- std over seeds (per-seed values in brackets). CPU s: process time of "
             "training (one thread; the env steps run in the same process), median over "
             "seeds; steps/s: env steps per wall-clock second (slowed by whatever else runs "
             "on the machine). RL-Zoo published: benchmark.md of rl-baselines3-zoo@22e3ff2 "
             "(one agent's deterministic episodes, env version and budget as named).", "",
             "Verdict: met only if all three hold -- **peer**: minirl's mean >= the SB3 "
             "peer's mean - std over its seeds; **RL-Zoo**: minirl's mean >= the published "
             "mean - std; **CPU**: minirl's median CPU time <= 1/3 of the peer's. A criterion "
             f"that could not be checked (peer not run, fewer than {MIN_SEEDS} seeds on either "
             "side: 'partial') leaves the row unmet.", "",
             "| algo | env | budget | seeds | minirl final return | SB3 (RL-Zoo settings) | "
             "RL-Zoo published | minirl steps/s | minirl CPU s | SB3 CPU s | CPU ratio | "
             "verdict |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    short, commands = [], []
    for (algo, env, budget), by_impl in sorted(groups.items()):
        m, s = (sorted(by_impl.get(k, []), key=lambda r: int(r["seed"])) for k in ("minirl", "sb3"))
        mm, ms, mv = _stat(m)
        sm, ss, sv = _stat(s)
        mcpu = float(np.median([float(r["cpu_s"]) for r in m])) if m else np.nan
        scpu = float(np.median([float(r["cpu_s"]) for r in s])) if s else np.nan
        sps = float(np.median([float(r["steps_per_s"]) for r in m])) if m else np.nan
        zoo = RL_ZOO_RESULTS.get((algo, env))
        zoo_s = f"{zoo[0]:.1f} +- {zoo[1]:.1f} ({zoo[3]}, {zoo[2]})" if zoo else "-"
        ratio = mcpu / scpu if m and s else None
        ok, crit = verdict(mv, sv, zoo, ratio)
        if not ok:
            short.append((algo, env, budget, crit))
        seeds = ",".join(r["seed"] for r in m) or ",".join(r["seed"] for r in s)

        def fmt(mean, std, vals):
            return f"{mean:.1f} +- {std:.1f} ({', '.join(f'{v:.0f}' for v in vals)})"

        lines.append(f"| {algo} | {env} | {budget} | {seeds} | "
                     + (fmt(mm, ms, mv) if m else "not run") + " | "
                     + (fmt(sm, ss, sv) if s else "not run") + f" | {zoo_s} | "
                     + (f"{sps:.0f} | {mcpu:.1f}" if m else "- | -") + " | "
                     + (f"{scpu:.1f}" if s else "-") + " | "
                     + (f"{ratio:.2f}" if ratio is not None else "-") + " | "
                     + ("met" if ok else "; ".join(c for c in crit if " met:" not in c))
                     + " |")
        for impl, rs in (("minirl", m), ("sb3", s)):
            for cmd in sorted({(r["command"], r["_file"]) for r in rs}):
                commands.append(f"* {algo} {env} {budget}, {impl}: `{cmd[0]}` "
                                f"(`benchmarks/results/{cmd[1]}`)")
    lines += ["", "## Rows that fall short, and why", ""]
    for algo, env, budget, crit in short:
        lines.append(f"* **{algo} {env}** ({budget} steps): " + "; ".join(crit) + ". Reason: "
                     + REASONS.get((algo, env), "not investigated yet"))
    if not short:
        lines.append("None.")
    lines += ["", "## Commands (every row)", "",
              "Each command appends its rows to the CSV named (run from the repository root, "
              "`.venv/bin/python` with `nice -n 5`):", ""] + commands
    if superseded:
        lines += ["", "## Superseded rows", "",
                  "Rows of an older CSV replaced by a newer CSV's rows for the same "
                  "(implementation, algo, env); kept in their files for the record:", ""]
        groups_old: dict[tuple, list] = {}
        for r in superseded:
            groups_old.setdefault((r["impl"], r["algo"], r["env"], r["budget"], r["_file"],
                                   r["_by"]), []).append(r)
        for (impl, algo, env, budget, f, by), rs in sorted(groups_old.items()):
            om, os_, ov = _stat(rs)
            lines.append(f"* {impl} {algo} {env} {budget}: {om:.1f} +- {os_:.1f} "
                         f"({', '.join(f'{v:.0f}' for v in ov)}) in `{f}`, superseded by "
                         f"`{by}`")
    lines += ["", "## Families with their own benchmarks", "",
              "DQN, SAC and ARS rows of the preset table are measured by their own learning "
              "benchmarks (with their own peers), not duplicated here:", ""]
    for algo, (script, table) in OWN_BENCHMARKS.items():
        lines.append(f"* {algo.upper()}: `{table}` (`python -m "
                     f"{script[:-3].replace('/', '.')}`)")
    if notes:
        lines += ["", notes]
    from benchmarks._harness import atomic_write_text
    out = RESULTS / MD_PATH.name   # (a smoke run's temporary directory, see main)
    atomic_write_text(out, "\n".join(lines) + "\n")
    return out


def _random_actions(space, rng, shape: tuple) -> np.ndarray:
    """Uniformly random actions ``[*shape, *space.shape]``: indices of a Discrete space, values
    in a (bounded) Box."""
    if hasattr(space, "n"):
        return rng.integers(space.n, size=shape)
    return rng.uniform(space.low, space.high, size=(*shape, *space.shape)).astype(space.dtype)


def _time_env(make, n_envs: int, steps: int, seed: int = 0) -> float:
    """Process time of ``steps`` env steps with uniformly random actions (no learner)."""
    envs = make()
    rng = np.random.default_rng(seed)
    if isinstance(envs, list):                       # n single envs, stepped one by one
        for k, e in enumerate(envs):
            e.reset(seed=seed + k)
        acts = _random_actions(envs[0].action_space, rng, (steps // n_envs, n_envs))
        t0 = time.process_time()
        for row in acts:
            for e, a in zip(envs, row):
                _, _, term, trunc, _ = e.step(int(a) if a.ndim == 0 else a)
                if term or trunc:
                    e.reset()
        return time.process_time() - t0
    space = getattr(envs, "single_action_space", None) or envs.action_space
    acts = _random_actions(space, rng, (steps // n_envs, n_envs))
    envs.reset(**({"seed": seed} if hasattr(envs, "single_action_space") else {}))
    t0 = time.process_time()
    for row in acts:
        envs.step(row)
    return time.process_time() - t0


class _Sections:
    """CPU time (``time.process_time``) and call count of wrapped callables, by label."""

    def __init__(self):
        self.cpu: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def wrap(self, label: str, fn):
        self.cpu.setdefault(label, 0.0)     # table order = wrapping order
        self.calls.setdefault(label, 0)

        def timed(*args, **kwargs):
            t0 = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.cpu[label] = self.cpu.get(label, 0.0) + time.process_time() - t0
                self.calls[label] = self.calls.get(label, 0) + 1
        return timed


def _sections_minirl_a2c(env: str, steps: int) -> tuple[float, _Sections]:
    """One minirl A2C training run with its parts timed in place: (CPU s of learn, sections).
    Bound methods are wrapped on the instances, module functions patched and restored."""
    import minirl.algos.actor_critic as ac
    from minirl.nn import Adam

    cls = ALGOS["a2c"]
    preset = find("a2c", env)
    agent = cls(env, cls.Config(**preset.overrides), seed=0, env_kwargs=preset.env_kwargs)
    sec, col = _Sections(), agent.collector
    col.collect = sec.wrap("rollout (RolloutCollector.collect)", col.collect)
    agent.envs.step = sec.wrap("  vector env step (SyncVectorEnv.step)", agent.envs.step)
    agent._act = sec.wrap("  policy forward + sample (ActorCriticNet.act)", agent._act)
    agent._value = sec.wrap("  V(last / final obs) (ActorCriticNet.value)", agent._value)
    col._normalize = sec.wrap("  obs normalizer (ObsNormalizer)", col._normalize)
    if agent.reward_scaler is not None:
        agent.reward_scaler.scale = sec.wrap("  reward scaler (RewardScaler.scale)",
                                             agent.reward_scaler.scale)
    agent._end_iteration = sec.wrap("_end_iteration (counters, episode stats, callback)",
                                    agent._end_iteration)
    saved = {k: getattr(ac, k) for k in ("advantages_and_targets", "a2c_loss_and_grad",
                                         "clip_grad_norm", "explained_variance")}
    labels = {"advantages_and_targets": "GAE targets (advantages_and_targets)",
              "a2c_loss_and_grad": "loss + backward (a2c_loss_and_grad)",
              "clip_grad_norm": "clip_grad_norm",
              "explained_variance": "explained_variance (logged metric)"}
    adam_step = Adam.step
    try:
        for k, fn in saved.items():
            setattr(ac, k, sec.wrap(labels[k], fn))
        Adam.step = sec.wrap("Adam.step", adam_step)
        log = TrainingLog(None, fields=cls.log_fields)
        t0 = time.process_time()
        agent.learn(steps, callback=log)
        total = time.process_time() - t0
    finally:
        for k, fn in saved.items():
            setattr(ac, k, fn)
        Adam.step = adam_step
    return total, sec


def _sections_sb3(algo: str, env: str, steps: int) -> tuple[float, _Sections]:
    """The same for Stable-Baselines3 (RL-Zoo settings), wrapped on its instances."""
    model, venv, _ = _build_sb3(algo, env, 0)
    sec = _Sections()
    model.collect_rollouts = sec.wrap("rollout (collect_rollouts)", model.collect_rollouts)
    venv.step = sec.wrap("  vec env step (VecNormalize + DummyVecEnv + Monitor)", venv.step)
    model.policy.forward = sec.wrap("  policy forward + sample (ActorCriticPolicy.forward)",
                                    model.policy.forward)
    model.rollout_buffer.add = sec.wrap("  RolloutBuffer.add", model.rollout_buffer.add)
    model.train = sec.wrap(f"train ({algo.upper()}.train)", model.train)
    t0 = time.process_time()
    model.learn(steps)
    return time.process_time() - t0, sec


def profile(algo: str, env: str, steps: int, repeats: int) -> str:
    """Where the training CPU time goes, minirl vs SB3 (markdown; see ``--profile``)."""
    import gymnasium as gym
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    from minirl.envs import make_vector_env

    kw, run = sb3_kwargs(algo, env)
    n = run["n_envs"]
    timed = {"minirl training": [], "sb3 training": [], "env only: n gym.make envs": [],
             "env only: minirl's vector env": [], "env only: sb3's vec env": []}

    def sb3_venv():
        v = make_vec_env(env, n_envs=n, seed=0)
        return VecNormalize(v, gamma=kw.get("gamma", 0.99)) if run["normalize"] else v

    for _ in range(repeats):
        timed["minirl training"].append(run_minirl(algo, env, 0, steps, 0, train_only=True))
        timed["sb3 training"].append(run_sb3(algo, env, 0, steps, 0, train_only=True))
        timed["env only: n gym.make envs"].append(
            _time_env(lambda: [gym.make(env) for _ in range(n)], n, steps))
        timed["env only: minirl's vector env"].append(
            _time_env(lambda: make_vector_env(env, n, "sync"), n, steps))
        timed["env only: sb3's vec env"].append(_time_env(sb3_venv, n, steps))
    med = {k: float(np.median(v)) for k, v in timed.items()}
    lines = [f"### {algo} {env}: {steps} steps, {n} envs, median of {repeats} (process time)",
             "", "| measurement | CPU s (runs) | per 1k env steps, ms |", "|---|---|---|"]
    for k, v in timed.items():
        lines.append(f"| {k} | {med[k]:.2f} ({', '.join(f'{x:.2f}' for x in v)}) | "
                     f"{1000 * med[k] / steps:.3f} |")
    runs = [("sb3", *_sections_sb3(algo, env, steps))]
    if algo == "a2c":
        runs.insert(0, ("minirl", *_sections_minirl_a2c(env, steps)))
    for impl, total, sec in runs:
        lines += ["", f"{impl}: one training run ({steps} steps) with its parts timed in place "
                  f"(process time around each call; the timers add ~2 x 3.5 us per call): "
                  f"{total:.2f} CPU s in all", "",
                  "| part (indented: inside the part above) | calls | us per call | CPU s | "
                  "share |", "|---|---|---|---|---|"]
        top, glue = 0.0, None          # glue: [outer CPU s, its parts' sum] of an open part
        for label, cpu in [*sec.cpu.items(), ("", 0.0)]:
            if not label.startswith(" ") and glue is not None and glue[1] > 0:
                g = glue[0] - glue[1]
                lines.append(f"| &nbsp;&nbsp;rest of it (glue) | | | {g:.2f} | {g / total:.1%} |")
            if not label:
                break
            if label.startswith(" "):
                glue[1] += cpu
            else:
                top, glue = top + cpu, [cpu, 0.0]
            calls = sec.calls[label]
            lines.append(f"| {label.replace('  ', '&nbsp;&nbsp;')} | {calls} | "
                         + (f"{1e6 * cpu / calls:.1f}" if calls else "-")
                         + f" | {cpu:.2f} | {cpu / total:.1%} |")
        lines.append(f"| rest (outside the timed parts) | | | {total - top:.2f} | "
                     f"{(total - top) / total:.1%} |")
    return "\n".join(lines) + "\n"


_TRAIN_CPU = """
import os, sys, time
for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[v] = "1"
from minirl.algos import ALGOS
from minirl.presets import find
algo, env, steps, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
cls, preset = ALGOS[algo], find(algo, env)
agent = cls(env, cls.Config(**preset.overrides), seed=seed, env_kwargs=preset.env_kwargs)
t0 = time.process_time()
agent.learn(steps)
print(time.process_time() - t0)
"""


def _train_cpu(root: Path, algo: str, env: str, steps: int, seed: int = 0) -> float:
    """Process time of one minirl training run with the preset, in a fresh interpreter that
    imports minirl from ``root`` (a checkout of some revision)."""
    import subprocess
    out = subprocess.run([sys.executable, "-c", _TRAIN_CPU, algo, env, str(steps), str(seed)],
                         cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
                         capture_output=True, text=True, check=True).stdout
    return float(out.split()[-1])


def cpu_compare(algo: str, env: str, steps: int, repeats: int, baseline: str | None,
                against: str | None = None) -> str:
    """Training CPU time of this tree, or of git revision ``against`` (and of revision
    ``baseline``, interleaved run by run: the machine's load hits both alike), median of
    ``repeats`` fresh-process runs (markdown). A revision is extracted (``git archive``) to a
    temporary directory. Each tree first runs one short warm-up (Numba's cache written), not
    counted."""
    import subprocess
    import tempfile
    root = RESULTS.parents[1]
    tmps: list = []

    def extract(rev: str) -> tuple[str, Path]:
        tmps.append(tempfile.TemporaryDirectory(prefix="minirl-rev-"))
        rev = subprocess.run(["git", "rev-parse", "--short", rev], cwd=root,
                             capture_output=True, text=True, check=True).stdout.strip()
        archive = subprocess.run(["git", "archive", rev], cwd=root, capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmps[-1].name], input=archive, check=True)
        return rev, Path(tmps[-1].name)

    try:
        trees = {}
        if baseline:
            rev, path = extract(baseline)
            trees[f"baseline {rev}"] = path
        if against:
            rev, path = extract(against)
            trees[f"revision {rev}"] = path
        else:
            trees["this tree"] = root
        for tree in trees.values():
            _train_cpu(tree, algo, env, 1, 0)
        times: dict[str, list[float]] = {k: [] for k in trees}
        for _ in range(repeats):
            for k, tree in trees.items():
                times[k].append(_train_cpu(tree, algo, env, steps, 0))
    finally:
        for tmp in tmps:
            tmp.cleanup()
    med = {k: float(np.median(v)) for k, v in times.items()}
    lines = [f"### {algo} {env} (preset), {steps} steps, seed 0: training CPU s, median of "
             f"{repeats} (runs interleaved)", "", "| tree | CPU s (runs) |", "|---|---|"]
    for k, v in times.items():
        lines.append(f"| {k} | {med[k]:.2f} ({', '.join(f'{x:.2f}' for x in v)}) |")
    if baseline:
        (kb, b), (kt, t) = list(med.items())[0], list(med.items())[-1]
        lines += ["", f"{kt} / {kb}: {t / b:.3f} ({100 * (1 - t / b):.1f}% less CPU)"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.learning.suite", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algos", nargs="+", default=None)
    p.add_argument("--envs", nargs="+", default=None)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=None, help="override every budget")
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument("--peer", action="store_true", help="also run Stable-Baselines3 (PPO/A2C)")
    p.add_argument("--peer-only", action="store_true", help="only the Stable-Baselines3 runs")
    p.add_argument("--table-only", action="store_true")
    p.add_argument("--profile", action="store_true",
                   help="where the CPU time goes for --algos/--envs (one of each) at --steps: "
                        "training CPU of minirl and SB3, the env alone (random actions), and a "
                        "cProfile section breakdown of each; markdown to --profile-out")
    p.add_argument("--cpu-only", action="store_true",
                   help="only minirl's training CPU time for --algos/--envs (one of each) at "
                        "--steps (default 100000), median of --repeats fresh-process runs; "
                        "markdown appended to --profile-out")
    p.add_argument("--baseline", default=None, metavar="REV",
                   help="--cpu-only: also time git revision REV (interleaved run by run)")
    p.add_argument("--against", default=None, metavar="REV",
                   help="--cpu-only: time git revision REV in place of this tree")
    p.add_argument("--repeats", type=int, default=3,
                   help="--profile, --cpu-only: timed repeats (median)")
    p.add_argument("--profile-out", default=None,
                   help="markdown file in benchmarks/results, appended (default: "
                        "learning_suite_profile.md; --cpu-only: learning_suite_speedup.md)")
    p.add_argument("--notes", default=str(NOTES_PATH),
                   help="markdown file appended to the table (default "
                        "benchmarks/results/learning_suite_notes.md: the table is never "
                        "rebuilt without its notes)")
    p.add_argument("--csv", default=CSV_PATH.name,
                   help="results file in benchmarks/results (one per concurrent job; the table "
                        "reads every learning_suite*.csv)")
    global RESULTS
    args = p.parse_args(argv)
    if args.notes and not Path(args.notes).is_file():
        p.error(f"--notes {args.notes}: no such file")
    notes = Path(args.notes).read_text() if args.notes else ""
    RESULTS.mkdir(exist_ok=True)
    if args.table_only:
        print(f"wrote {write_table(notes)}")
        return 0
    if args.profile or args.cpu_only:
        if not (args.algos and args.envs and len(args.algos) == len(args.envs) == 1):
            p.error("--profile and --cpu-only need one --algos and one --envs")
        cmd = "python -m benchmarks.learning.suite " + " ".join(
            shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
        if args.cpu_only:
            text = cpu_compare(args.algos[0], args.envs[0], args.steps or 100_000, args.repeats,
                               args.baseline, args.against)
        else:
            text = profile(args.algos[0], args.envs[0], args.steps or 100_000, args.repeats)
        text = f"{text}\nProduced by `{cmd}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}).\n"
        print(text)
        out = args.profile_out or ("learning_suite_speedup.md" if args.cpu_only
                                   else "learning_suite_profile.md")
        with open(RESULTS / out, "a") as f:
            f.write("\n" + text)
        return 0
    command = "python -m benchmarks.learning.suite " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    impls = ([] if args.peer_only else ["minirl"]) + (["sb3"] if args.peer or args.peer_only
                                                     else [])
    if args.steps is not None:   # smoke runs never touch the committed results: their CSV
        # and table go to a temporary directory (benchmarks/_harness.py: smoke_results)
        from benchmarks._harness import smoke_results
        RESULTS = smoke_results("--steps given")
    for preset in suite_rows(args.algos, args.envs):
        budget = args.steps or preset.steps
        # Seed by seed, both implementations back to back (with --peer): their CPU times
        # are measured under the same load, whatever else runs on the machine meanwhile.
        for seed in args.seeds:
            for impl in impls:
                if impl == "sb3" and preset.algo not in ("ppo", "a2c"):
                    continue
                run = run_minirl if impl == "minirl" else run_sb3
                row = {"impl": impl, "algo": preset.algo, "env": preset.env, "seed": seed,
                       "budget": budget, "command": command,
                       **run(preset.algo, preset.env, seed, budget, args.eval_episodes)}
                print(", ".join(f"{k}={row[k]}" for k in COLUMNS[:-1]), flush=True)
                out = RESULTS / args.csv
                lock_path = Path(tempfile.gettempdir()) / f"minirl_{out.name}.lock"
                with open(lock_path, "w") as lock:   # not in benchmarks/results
                    import fcntl      # jobs for other seeds may append to the same CSV
                    fcntl.flock(lock, fcntl.LOCK_EX)
                    rows = _read(out)
                    rows.append({k: str(v) for k, v in row.items()})
                    _write(rows, out)
    print(f"wrote {write_table(notes)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
