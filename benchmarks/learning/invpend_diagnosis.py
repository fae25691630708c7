"""Instrumented PPO runs on InvertedPendulum-v5 with RL-Zoo's preset, minirl and SB3.

Why does PPO with RL-Zoo's InvertedPendulum-v2 settings (one env, 32-step rollouts, one
32-sample minibatch, 5 epochs, lr 2.2e-4, clip 0.4, ent_coef 1.4e-7, grad clip 0.3,
normalized observations and rewards) collapse late in training? This script trains one seed
exactly as ``benchmarks.learning.suite`` does (same constructor, same seed, nothing that
draws from the training generators) and records one row per iteration (32 env steps):

  steps, ep_ret (mean return of the episodes finished in the iteration, raw rewards),
  n_term / n_trunc (terminations / time-limit truncations in the rollout),
  log_std, kl_k1 / kl_k3 / clip_frac (pi_k -> pi_{k+1} on the whole 32-sample batch after the
  update), value_loss (mean over the minibatch steps), ev (explained variance of the
  collection-time values), grad_norm (global norm before clipping, mean over the 5 steps),
  adv_std (std of the raw GAE advantages, scaled-reward units), dmu (mean |mu_{k+1} - mu_k|
  over the batch, action units), dmu_sd (the same divided by the new std), v_mean (mean
  V(s_t)), ret_var (the reward scaler's Var[discounted return]), obs_var0..3 (observation
  normalizer variances), eval (one deterministic episode every ``--eval-every`` steps,
  seed 10000 + k, NaN elsewhere), adv_z2 (mean of the normalized advantage times z^2 - 1,
  z = (a - mu_k) / std_k: the surrogate's log_std gradient at ratio 1; < 0 shrinks the std).

Usage (from the repository root):
  python -m benchmarks.learning.invpend_diagnosis run --impl minirl --seed 0 \
      --out benchmarks/results/invpend_diag_minirl_s0.csv.gz
  python -m benchmarks.learning.invpend_diagnosis run --impl sb3 --seed 2 ...
  python -m benchmarks.learning.invpend_diagnosis run --impl minirl --seed 0 \
      --set target_kl=0.02 --out ...      (a variant: any PPOConfig field / SB3 kwarg)
  python -m benchmarks.learning.invpend_diagnosis summary FILE [--window 50000]
  python -m benchmarks.learning.invpend_diagnosis compare FILE...
  python -m benchmarks.learning.invpend_diagnosis crosscheck [--iters 20] [--ddof1]
  python -m benchmarks.learning.invpend_diagnosis crosscheck-norm
  python -m benchmarks.learning.invpend_diagnosis noise [--steps 100000] [--set key=value]

``run`` ends with the suite's final evaluation (10 deterministic episodes, seeds 10000+) and
prints it; ``summary`` prints a markdown table of windowed statistics, ``compare`` one row per
run; ``crosscheck`` compares minirl's PPO update with SB3's ``PPO.train`` on the same batches,
``crosscheck-norm`` the observation/reward normalizers with SB3's ``VecNormalize``; ``noise``
runs the preset's update on advantages that carry no information. Findings:
benchmarks/results/learning_suite_invpend_diagnosis.md.
"""
from __future__ import annotations

import argparse
import ast
import csv
import gzip
import math
import time

import numpy as np

ENV = "InvertedPendulum-v5"
EVAL_SEED = 10_000
COLS = ["steps", "ep_ret", "n_episodes", "n_term", "n_trunc", "log_std", "kl_k1", "kl_k3",
        "clip_frac", "value_loss", "ev", "grad_norm", "adv_std", "dmu", "dmu_sd", "v_mean",
        "ret_var", "obs_var0", "obs_var1", "obs_var2", "obs_var3", "eval", "adv_z2"]


def _adv_z2(adv, actions, mu_old, log_std_old) -> float:
    """mean(A_norm * (z^2 - 1)), z = (a - mu_k(s)) / std_k: the per-sample gradient of the
    surrogate w.r.t. log_std at ratio 1 (negative: this batch's advantages favour actions
    near the mean, the first step shrinks the std)."""
    a = (adv - adv.mean()) / (adv.std() + 1e-8)
    z = (np.reshape(actions, -1) - np.reshape(mu_old, -1)) / math.exp(log_std_old)
    return float(np.mean(a * (z * z - 1.0)))


def _parse_set(items):
    out = {}
    for item in items or []:
        k, v = item.split("=", 1)
        try:
            out[k] = ast.literal_eval(v)
        except (ValueError, SyntaxError):
            out[k] = v
    return out


def _episode(predict, k: int) -> float:
    import gymnasium as gym
    env = gym.make(ENV)
    obs, _ = env.reset(seed=EVAL_SEED + k)
    total, done = 0.0, False
    while not done:
        obs, r, term, trunc, _ = env.step(predict(obs))
        total += float(r)
        done = term or trunc
    env.close()
    return total


def run_minirl(seed: int, steps: int, eval_every: int, overrides: dict, rows: list):
    from benchmarks.learning.suite import ALGOS
    from minirl.objectives.value import advantages_and_targets
    from minirl.presets import find
    cls, preset = ALGOS["ppo"], find("ppo", ENV)
    cfg = cls.Config(**{**preset.overrides, **overrides})
    agent = cls(ENV, cfg, seed=seed, env_kwargs=preset.env_kwargs)
    net, prev = agent.net, {"params": agent.params.copy(), "next_eval": eval_every, "k": 0}

    def callback(ag, m):
        ro = ag.collector.buffer          # the rollout this update used (reused buffer)
        adv, _ = advantages_and_targets("gae", ro.rewards, ro.values, ro.next_values,
                                        ro.terminated, ro.truncated, cfg.gamma, cfg.lam)
        obs = ro.obs.reshape(-1, ro.obs.shape[-1])
        d_old, _, _ = net.forward(prev["params"], obs)
        d_new, _, _ = net.forward(ag.params, obs)
        dmu = float(np.abs(d_new.mean - d_old.mean).mean())
        log_std = float(ag.params[net.log_std_slice][0])
        az2 = _adv_z2(np.reshape(adv, -1), ro.actions, d_old.mean,
                      float(prev["params"][net.log_std_slice][0]))
        rets = m["episode_returns"]
        ev = float("nan")
        if m["steps"] >= prev["next_eval"]:
            ev = _episode(lambda o: ag.predict(o, deterministic=True), prev["k"])
            prev["next_eval"] += eval_every
            prev["k"] += 1
        norm = ag.obs_normalizer.rms.var if ag.obs_normalizer is not None else [np.nan] * 4
        rows.append([m["steps"], float(np.mean(rets)) if rets else float("nan"), len(rets),
                     int(ro.terminated.sum()), int(ro.truncated.sum()), log_std,
                     m["approx_kl_k1"], m["approx_kl_k3"], m["clip_fraction"],
                     m.get("value_loss", np.nan), m["explained_variance"],
                     m.get("grad_norm", np.nan), float(adv.std()), dmu,
                     dmu / math.exp(log_std), float(ro.values.mean()),
                     float(ag.reward_scaler.rms.var) if ag.reward_scaler else float("nan"),
                     *[float(x) for x in norm], ev, az2])
        prev["params"] = ag.params.copy()

    agent.learn(steps, callback=callback)
    return agent.evaluate(10, deterministic=True, seed=EVAL_SEED)


def run_sb3(seed: int, steps: int, eval_every: int, overrides: dict, rows: list):
    import torch as th
    from stable_baselines3.common.callbacks import BaseCallback
    from benchmarks.learning.suite import _build_sb3
    if overrides:   # a variant: the suite's kwargs plus these (same construction path)
        import benchmarks.learning.suite as suite
        orig = suite.sb3_kwargs
        suite.sb3_kwargs = lambda a, e: ({**orig(a, e)[0], **overrides}, orig(a, e)[1])
        try:
            model, venv, _ = _build_sb3("ppo", ENV, seed)
        finally:
            suite.sb3_kwargs = orig
    else:
        model, venv, _ = _build_sb3("ppo", ENV, seed)
    norms = []
    orig_clip = th.nn.utils.clip_grad_norm_

    def clip_rec(params, max_norm, *a, **k):
        n = orig_clip(params, max_norm, *a, **k)
        norms.append(float(n))
        return n
    th.nn.utils.clip_grad_norm_ = clip_rec
    state = {"term": 0, "trunc": 0, "rets": [], "next_eval": eval_every, "k": 0}

    class Rec(BaseCallback):
        def _on_step(self):
            for done, info in zip(self.locals["dones"], self.locals["infos"]):
                if done:
                    if info.get("TimeLimit.truncated", False):
                        state["trunc"] += 1
                    else:
                        state["term"] += 1
                if "episode" in info:
                    state["rets"].append(info["episode"]["r"])
            return True

    orig_train, policy = model.train, model.policy

    def train():
        buf = model.rollout_buffer
        obs = th.as_tensor(buf.observations.reshape(-1, buf.observations.shape[-1]))
        act = th.as_tensor(buf.actions.reshape(-1, buf.actions.shape[-1]))
        with th.no_grad():
            mu_old = policy.get_distribution(obs).distribution.mean.numpy().copy()
        az2 = _adv_z2(buf.advantages.reshape(-1), buf.actions, mu_old,
                      float(policy.log_std.detach().numpy()[0]))
        norms.clear()
        orig_train()
        with th.no_grad():
            _, logp, _ = policy.evaluate_actions(obs, act)
            mu_new = policy.get_distribution(obs).distribution.mean.numpy()
        log_ratio = logp.numpy() - buf.log_probs.reshape(-1)
        ratio = np.exp(log_ratio)
        log_std = float(policy.log_std.detach().numpy()[0])
        dmu = float(np.abs(mu_new - mu_old).mean())
        vals, rets_ = buf.values.reshape(-1), buf.returns.reshape(-1)
        var_y = np.var(rets_)
        ev = float("nan") if var_y == 0 else float(1 - np.var(rets_ - vals) / var_y)
        steps_now = model.num_timesteps
        ev_ret = float("nan")
        if steps_now >= state["next_eval"]:
            def predict(o):
                x = venv.normalize_obs(o[None])
                return model.predict(x, deterministic=True)[0][0]
            ev_ret = _episode(predict, state["k"])
            state["next_eval"] += eval_every
            state["k"] += 1
        nv = model.logger.name_to_value
        rows.append([steps_now, float(np.mean(state["rets"])) if state["rets"] else float("nan"),
                     len(state["rets"]), state["term"], state["trunc"], log_std,
                     float(np.mean(-log_ratio)), float(np.mean(ratio - 1 - log_ratio)),
                     float(np.mean(np.abs(ratio - 1) > model.clip_range(1.0))),
                     float(nv.get("train/value_loss", np.nan)), ev,
                     float(np.mean(norms)) if norms else float("nan"),
                     float(buf.advantages.std()), dmu, dmu / math.exp(log_std),
                     float(vals.mean()), float(venv.ret_rms.var),
                     *[float(x) for x in venv.obs_rms.var], ev_ret, az2])
        state.update(term=0, trunc=0, rets=[])

    model.train = train
    model.learn(steps, callback=Rec())
    th.nn.utils.clip_grad_norm_ = orig_clip
    venv.training = False

    def predict(o):
        return model.predict(venv.normalize_obs(o[None]), deterministic=True)[0][0]
    return np.array([_episode(predict, k) for k in range(10)])


def noise_drift(steps: int, overrides: dict, seed: int = 0, adv_scale: float = 1.0,
                every: int = 25_000):
    """PPO updates on advantages that carry no information: the preset's network and update
    (``ppo_update``) on batches of N*T standard-normal observations, actions sampled from the
    current policy, advantages ~ N(0, adv_scale^2) drawn independently of everything and
    value targets equal to the values. Returns rows (steps, log_std, median KL k3, max KL k3,
    median clip fraction) every ``every`` env steps: how far the update rule alone moves the
    policy's std when there is nothing to learn (what a solved InvertedPendulum gives)."""
    from minirl.algos.ppo import PPO, Batch, ppo_update
    from minirl.presets import find
    cfg = PPO.Config(**{**find("ppo", ENV).overrides, **overrides})
    agent = PPO(ENV, cfg, seed=seed)
    net, params, opt = agent.net, agent.params.copy(), agent.opt_states["adam"]
    rng, b = np.random.default_rng(seed), cfg.num_envs * cfg.num_steps
    out, kls, clips, done = [], [], [], 0
    while done < steps:
        obs = rng.standard_normal((b, agent.obs_dim)).astype(cfg.dtype)
        dist, values, _ = net.forward(params, obs)
        actions = dist.sample(rng)
        adv = (rng.standard_normal(b) * adv_scale).astype(cfg.dtype)
        batch = Batch(obs, actions, dist.log_prob(actions), values, adv, values + adv)
        params, opt, st = ppo_update(net, params, opt, batch, rng, cfg, cfg.lr, cfg.clip_eps,
                                     cfg.kl_beta)
        kls.append(st["approx_kl_k3"])
        clips.append(st["clip_fraction"])
        done += b
        if done % every < b:
            out.append((done, float(params[net.log_std_slice][0]), float(np.median(kls)),
                        float(np.max(kls)), float(np.median(clips))))
            kls, clips = [], []
    return out


def crosscheck(iters: int = 20, seed: int = 0, ddof1: bool = False) -> list[tuple]:
    """minirl's ``ppo_update`` against SB3's ``PPO.train`` on the same batches from the same
    parameters: minirl collects a rollout (preset, seed), both libraries update from identical
    weights and optimizer state on it (SB3's rollout buffer filled with minirl's batch); after
    the first copy each library keeps its own parameters and Adam state, so differences
    accumulate over the iterations. Returns per iteration (k, |dtheta_minirl|,
    |theta_sb3 - theta_minirl|, log_std minirl, log_std sb3). ``ddof1``: minirl's advantages
    normalized with the sample std as SB3 does (the one documented difference,
    ``normalize_advantages``)."""
    import minirl.algos.ppo as ppo_mod
    original = ppo_mod.normalize_advantages
    if ddof1:
        ppo_mod.normalize_advantages = lambda a: (a - a.mean()) / (a.std(ddof=1) + 1e-8)
    try:
        return _crosscheck(iters, seed)
    finally:
        ppo_mod.normalize_advantages = original


def _crosscheck(iters: int, seed: int) -> list[tuple]:
    import torch as th
    from stable_baselines3.common.logger import Logger
    from benchmarks.learning.suite import _build_sb3
    from minirl.algos.ppo import PPO, make_batch, ppo_update
    from minirl.objectives.value import advantages_and_targets
    from minirl.presets import find
    cfg = PPO.Config(**find("ppo", ENV).overrides)
    agent = PPO(ENV, cfg, seed=seed)
    net = agent.net
    model, _, _ = _build_sb3("ppo", ENV, seed)
    model.set_logger(Logger(None, []))
    pol = model.policy
    mods = [(net.actor, net.actor_slice, [pol.mlp_extractor.policy_net[0],
                                          pol.mlp_extractor.policy_net[2], pol.action_net]),
            (net.critic, net.vf_slice, [pol.mlp_extractor.value_net[0],
                                        pol.mlp_extractor.value_net[2], pol.value_net])]

    def to_sb3(params):
        with th.no_grad():
            for mlp, sl, layers in mods:
                v = mlp.views(params[sl])
                for i, lin in zip((0, 2, 4), layers):
                    lin.weight.copy_(th.as_tensor(v[f"{i}.weight"].T.copy()))
                    lin.bias.copy_(th.as_tensor(v[f"{i}.bias"]))
            pol.log_std.copy_(th.as_tensor(params[net.log_std_slice]))

    def from_sb3():
        out = np.zeros_like(agent.params)
        for mlp, sl, layers in mods:
            v = mlp.views(out[sl])
            for i, lin in zip((0, 2, 4), layers):
                v[f"{i}.weight"][:] = lin.weight.detach().numpy().T
                v[f"{i}.bias"][:] = lin.bias.detach().numpy()
        out[net.log_std_slice] = pol.log_std.detach().numpy()
        return out

    to_sb3(agent.params)
    agent._start_learning()
    opt, rows = agent.opt_states["adam"], []
    buf = model.rollout_buffer
    for k in range(iters):
        ro = agent._collect()
        adv, ret = advantages_and_targets("gae", ro.rewards, ro.values, ro.next_values,
                                          ro.terminated, ro.truncated, cfg.gamma, cfg.lam)
        batch = make_batch(ro, adv, ret)
        p0 = agent.params.copy()
        agent.params, opt, _ = ppo_update(net, agent.params, opt, batch, agent.rng, cfg, cfg.lr,
                                          cfg.clip_eps, cfg.kl_beta)
        buf.reset()
        buf.observations[:, 0] = batch.obs
        buf.actions[:, 0] = batch.actions
        buf.log_probs[:, 0] = batch.logp
        buf.values[:, 0] = batch.values
        buf.advantages[:, 0] = batch.adv
        buf.returns[:, 0] = batch.returns
        buf.pos, buf.full = buf.buffer_size, True
        model.train()
        ps = from_sb3()
        rows.append((k, float(np.linalg.norm(agent.params - p0)),
                     float(np.linalg.norm(ps - agent.params)),
                     float(agent.params[net.log_std_slice][0]), float(ps[net.log_std_slice][0])))
    return rows


def crosscheck_norm(steps: int = 20_000, seed: int = 0) -> dict[str, float]:
    """minirl's ObsNormalizer + RewardScaler against SB3's VecNormalize on one stream: SB3's
    VecNormalize(gamma 0.999) steps InvertedPendulum with uniform random actions; minirl's
    normalizers are fed the same raw observations (``get_original_obs``, the reset
    observation included, as minirl's collector folds each acted-on observation once),
    rewards and done flags. Returns the largest |difference| of the normalized observations
    and of the scaled rewards over the last half of the stream, and the episodes seen."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize
    from minirl.normalize import ObsNormalizer, RewardScaler
    venv = VecNormalize(make_vec_env(ENV, n_envs=1, seed=seed), gamma=0.999)
    venv.reset()
    obs_n, scaler = ObsNormalizer((4,)), RewardScaler(1, 0.999)
    obs_n(venv.get_original_obs(), update=True)
    rng = np.random.default_rng(seed)
    d_obs = d_rew = 0.0
    episodes = 0
    for t in range(steps):
        obs, rew, done, _ = venv.step(rng.uniform(-3, 3, (1, 1)).astype(np.float32))
        mo = obs_n(venv.get_original_obs(), update=True)
        mr = scaler.scale(venv.get_original_reward().astype(np.float64), done.astype(bool))
        episodes += int(done[0])
        if t >= steps // 2:
            d_obs = max(d_obs, float(np.abs(mo - obs).max()))
            d_rew = max(d_rew, float(np.abs(mr - rew).max()))
    return {"max |obs diff|": d_obs, "max |reward diff|": d_rew, "episodes": episodes,
            "scaled reward": float(rew[0])}


def _open(path, mode):
    return gzip.open(path, mode + "t", newline="") if str(path).endswith(".gz") \
        else open(path, mode, newline="")


def load(path) -> dict[str, np.ndarray]:
    with _open(path, "r") as f:
        rows = [r for r in csv.reader(f) if r and not r[0].startswith("#")]
    head, data = rows[0], np.array([[float(x) for x in r] for r in rows[1:]])
    return {h: data[:, i] for i, h in enumerate(head)}


def summary(path, window: int) -> str:
    """Markdown table: per window of ``window`` env steps, the training episodes' mean return
    and count, terminations, and the medians (max for KL) of the per-iteration diagnostics."""
    d = load(path)
    w = ((d["steps"] - 1) // window).astype(int)
    lines = ["| steps (k) | train ep. return | episodes | iters w/ termination | eval | "
             "log_std | KL k3 median / max | clip frac | dmu/std | grad norm | value loss | "
             "EV | adv std | V mean | Var[ret] | A x (z^2-1) |", "|" + "---|" * 16]
    for k in np.unique(w):
        s = w == k
        ep = d["ep_ret"][s]
        n_ep = d["n_episodes"][s]
        ret = np.nansum(ep * n_ep) / max(n_ep.sum(), 1)
        evs = d["eval"][s][~np.isnan(d["eval"][s])]
        lines.append(
            f"| {int((k + 1) * window // 1000)} | {ret:.0f} | {int(n_ep.sum())} | "
            f"{np.mean(d['n_term'][s] > 0):.2f} | "
            f"{'/'.join(f'{x:.0f}' for x in evs) or '-'} | {np.median(d['log_std'][s]):.2f} | "
            f"{np.median(d['kl_k3'][s]):.3g} / {np.max(d['kl_k3'][s]):.3g} | "
            f"{np.median(d['clip_frac'][s]):.2f} | {np.median(d['dmu_sd'][s]):.2f} | "
            f"{np.median(d['grad_norm'][s]):.3g} | {np.median(d['value_loss'][s]):.3g} | "
            f"{np.nanmedian(d['ev'][s]):.2f} | {np.median(d['adv_std'][s]):.3g} | "
            f"{np.median(d['v_mean'][s]):.2f} | {np.median(d['ret_var'][s]):.4g} | "
            f"{np.mean(d['adv_z2'][s]) if 'adv_z2' in d else float('nan'):.3f} |")
    return "\n".join(lines)


def compare(paths, after: int = 100_000) -> str:
    """Markdown table, one row per run file: the final evaluation (header line), and after
    ``after`` env steps (the task is solved by then in every run measured) the terminations
    (pole falls), the iterations that had one, the deterministic evaluation episodes under
    1000, log_std at the end, and over the second half of the run the median KL k3 per
    iteration, the share of iterations with KL k3 > 1 and the median clip fraction."""
    lines = ["| run | final return (10 episodes) | falls after 100k | iterations with a fall "
             "| eval episodes < 1000 | log_std at the end | KL k3 median (2nd half) | "
             "iterations with KL > 1 (2nd half) | clip fraction median (2nd half) |",
             "|" + "---|" * 9]
    for path in paths:
        with _open(path, "r") as f:
            head = f.readline().strip().strip('"')
        d = load(path)
        t, late = d["steps"], d["steps"] > after
        half = t > t[-1] / 2
        ev = d["eval"][late & ~np.isnan(d["eval"])]
        final = head.split("final return ")[1].split(" (")[0]
        name = str(path).split("invpend_diag_")[-1].split(".csv")[0]
        lines.append(f"| {name} | {final} | {int(d['n_term'][late].sum())} | "
                     f"{int((d['n_term'][late] > 0).sum())} | {int((ev < 1000).sum())} of "
                     f"{ev.size} | {d['log_std'][-1]:.2f} | {np.median(d['kl_k3'][half]):.3g} | "
                     f"{np.mean(d['kl_k3'][half] > 1):.3f} | "
                     f"{np.median(d['clip_frac'][half]):.2f} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--impl", choices=["minirl", "sb3"], default="minirl")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--steps", type=int, default=1_000_000)
    r.add_argument("--eval-every", type=int, default=10_000)
    r.add_argument("--set", nargs="*", default=[], help="key=value overrides (config / SB3)")
    r.add_argument("--out", required=True)
    n = sub.add_parser("noise")
    n.add_argument("--steps", type=int, default=200_000)
    n.add_argument("--adv-scale", type=float, default=1.0)
    n.add_argument("--set", nargs="*", default=[])
    c = sub.add_parser("crosscheck")
    c.add_argument("--iters", type=int, default=20)
    c.add_argument("--ddof1", action="store_true")
    sub.add_parser("crosscheck-norm")
    cm = sub.add_parser("compare")
    cm.add_argument("paths", nargs="+")
    s = sub.add_parser("summary")
    s.add_argument("path")
    s.add_argument("--window", type=int, default=50_000)
    a = p.parse_args(argv)
    if a.cmd == "noise":
        rows = noise_drift(a.steps, _parse_set(a.set), adv_scale=a.adv_scale)
        print(f"noise-only updates {_parse_set(a.set)} adv scale {a.adv_scale}: "
              "steps, log_std, KL k3 median / max, clip fraction median")
        for r in rows:
            print(f"{r[0]} {r[1]:.2f} {r[2]:.3g} / {r[3]:.3g} {r[4]:.2f}")
        return
    if a.cmd == "crosscheck":
        print("iteration, |theta_{k+1} - theta_k| minirl, |theta_sb3 - theta_minirl|, "
              "log_std minirl, log_std sb3")
        for r in crosscheck(a.iters, ddof1=a.ddof1):
            print(f"{r[0]} {r[1]:.4g} {r[2]:.3g} {r[3]:.6f} {r[4]:.6f}")
        return
    if a.cmd == "crosscheck-norm":
        print(crosscheck_norm())
        return
    if a.cmd == "compare":
        print(compare(a.paths))
        return
    if a.cmd == "summary":
        print(summary(a.path, a.window))
        return
    rows, overrides = [], _parse_set(a.set)
    cpu = time.process_time()
    fn = run_minirl if a.impl == "minirl" else run_sb3
    final = fn(a.seed, a.steps, a.eval_every, overrides, rows)
    cpu = time.process_time() - cpu
    with _open(a.out, "w") as f:
        wr = csv.writer(f)
        wr.writerow([f"# {a.impl} seed {a.seed} steps {a.steps} overrides {overrides}: final "
                     f"return {final.mean():.1f} +- {final.std():.1f} (10 deterministic "
                     f"episodes, seeds 10000+), cpu {cpu:.0f} s"])
        wr.writerow(COLS)
        for row in rows:
            wr.writerow([f"{x:.3g}" if isinstance(x, float) else x for x in row])
    print(f"{a.impl} seed {a.seed} {overrides}: final {final.mean():.1f} +- {final.std():.1f} "
          f"({', '.join(f'{x:.0f}' for x in final)}), cpu {cpu:.0f} s -> {a.out}")


if __name__ == "__main__":
    main()
