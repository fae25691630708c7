"""DAgger (dataset aggregation) and its intervention variant (HG-DAgger style).

    0. Given demonstrations D from the expert, train pi_theta on D (behaviour cloning)
    for iteration i = 0, 1, 2, ...:
      1. Roll out the learned policy for T_i = steps_per_iter * steps_growth^i steps (rounded;
         growth 1: a constant T; growth 2 with T_0 = |D| doubles D every iteration):
         s'_1, a_hat_1, ..., s'_T.
         ``gate="none"`` (DAgger): at each step the expert's action is executed with
         probability beta_i = beta0 * beta_decay^i, else the learner's (beta0 = 0: the
         slide's pure learner rollout; Ross et al. use beta_1 = 1, beta_i = p^(i-1)).
         ``gate="intervention"`` (corrections "while taking full control"): the expert takes
         control when the learner's action is far from its own (``intervention_gate``) and
         keeps it for ``gate_hold`` steps; otherwise the learner acts.
      2. Query the expert's action a* = pi_expert(s') at the visited states; the labels are
         every visited state (DAgger) or only the expert-controlled ones (intervention)
      3. Aggregate D <- D u {(s', a*)}
      4. Update the policy: ``updates_per_iter`` minibatch Adam steps of the BC loss on D,
         warm-started from the current parameters (``warm_start=True``) or from fresh
         parameters and a fresh Adam state (``False``: Ross et al.'s "train classifier
         pi_{i+1} on D", the same training BC gets on a dataset of that size); the
         observation normalizer is refit to all of D first

``learn(total_steps)`` counts environment steps of step 1. Metrics per iteration: ``labels``
(expert-labelled pairs in D, the demonstrations included: the budget the compounding-errors
benchmark compares), ``beta``, ``expert_control`` (fraction of steps the expert executed),
``loss``. In the intervention variant the expert also watches every step (to decide when to
take over); those queries are counted apart in ``extra_state["expert_queries"]``, not as labels.

Observations that are not 1-D Boxes (FrozenLake-v1, Taxi-v4, Dict, Tuple) are flattened as
for every agent (``minirl.spaces``: one-hot for Discrete); the expert is asked on those flat
rows (a saved minirl agent's ``predict`` takes them) and D holds them. The aggregated data
(un-normalized flat observations and env actions) is part of ``save``; ``load`` sizes the
fresh agent's dataset from the file before validating it. Every ``learn`` call starts fresh
episodes (the envs are reset with a seed drawn from the agent's generator, the intervention
hold cleared), so ``load(path).learn(n)`` equals the saved agent's own ``learn(n)``.

Lecture: Stanford CS224R "Imitation Learning": "Compounding errors" (covariate shift
p_expert(s) != p_pi(s)), "Addressing Compounding Errors with Interventions" (DAgger steps 1-4;
"collect corrective behavior data while taking full control"; "could you automatically detect
when intervention is needed?"). Papers: Ross, Gordon & Bagnell 2011, "A Reduction of Imitation
Learning and Structured Prediction to No-Regret Online Learning" (arXiv:1011.0686); Kelly et
al. 2019, "HG-DAgger: Interactive Imitation Learning with Human Experts" (arXiv:1810.02890).
"""
from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from minirl.algos.base import check_config, loading
from minirl.envs import make_env
from minirl.algos.bc import BC, BCConfig, bc_step
from minirl.imitation.dataset import Demonstrations, check_actions
from minirl.imitation.experts import as_expert, check_expert, collect_demonstrations
from minirl.normalize import ObsNormalizer
from minirl.rollout import EpisodeStats

__all__ = ["DAggerConfig", "DAgger", "dagger_beta", "mix_actions", "action_distance",
           "intervention_gate"]

GATES = ("none", "intervention")


@dataclass(frozen=True)
class DAggerConfig(BCConfig):
    expert: str = "auto"               # "auto" (CartPole/Pendulum controller), "cartpole",
    #                                    "pendulum", or a saved agent .npz (or pass expert=)
    init_episodes: int = 1             # expert episodes collected as D when demos is ""
    steps_per_iter: int = 200          # env steps rolled out in iteration 0 (step 1)
    steps_growth: float = 1.0          # T_i = round(steps_per_iter * steps_growth^i)
    warm_start: bool = True            # step 4 continues from the current parameters (else
    #                                    fresh parameters and Adam state every iteration)
    updates_per_iter: int = 200        # Adam steps on D per iteration (step 4, and step 0)
    beta0: float = 0.0                 # probability of executing the expert's action, i = 0
    beta_decay: float = 0.5            # beta_i = beta0 * beta_decay^i
    gate: str = "none"                 # "none" (DAgger) or "intervention" (HG-DAgger style)
    gate_threshold: float = 0.5        # take over when distance(a_learner, a_expert) > this
    gate_hold: int = 10                # steps the expert keeps control once it takes over
    deterministic_rollout: bool = True # the learner acts with its deterministic action
    val_fraction: float = 0.0          # (unused: D keeps growing, no early stopping)

    def __post_init__(self):
        super().__post_init__()
        check_config(self, init_episodes=(1, None), steps_per_iter=(1, None),
                     updates_per_iter=(1, None), steps_growth=(1.0, 100.0),
                     beta0=(0.0, 1.0), beta_decay=(0.0, 1.0),
                     gate_threshold=(0.0, None), gate_hold=(1, None))
        if self.gate not in GATES:
            raise ValueError(f"gate must be one of {GATES}, got {self.gate!r}")


def dagger_beta(iteration: int, beta0: float, beta_decay: float) -> float:
    """``beta_i = beta0 * beta_decay^i``: the probability that the expert's action is executed
    in iteration i's rollout (Ross et al. 2011: beta_1 = 1, then p^(i-1))."""
    if iteration < 0:
        raise ValueError(f"iteration must be >= 0, got {iteration}")
    return float(beta0) * float(beta_decay) ** int(iteration)


def mix_actions(learner, expert, beta: float, rng: np.random.Generator):
    """Step 1 (DAgger): per row, the expert's action with probability beta, else the learner's.

    learner, expert ``[N, ...]`` -> ``(actions [N, ...], expert_mask [N] bool)``; one uniform
    draw per row from ``rng``.
    """
    learner, expert = np.asarray(learner), np.asarray(expert)
    if learner.shape != expert.shape:
        raise ValueError(f"learner {learner.shape} and expert {expert.shape} actions differ "
                         "in shape")
    mask = rng.random(learner.shape[0]) < beta
    sel = mask.reshape((-1,) + (1,) * (learner.ndim - 1))
    return np.where(sel, expert, learner), mask


def action_distance(learner, expert, space: spaces.Space) -> np.ndarray:
    """``[N]`` distance between actions: Discrete -> 1.0 where they differ, else 0.0; Box ->
    the Euclidean norm of the difference after scaling each dimension to [-1, 1]
    (d = ||2 (a_L - a_E) / (high - low)||), so one threshold suits any action range."""
    learner, expert = np.asarray(learner), np.asarray(expert)
    if isinstance(space, spaces.Discrete):
        return (learner != expert).astype(np.float64).reshape(learner.shape[0])
    # 2 (a_L - a_E) / (high - low) from halves: the same bits, no overflow for a huge box
    diff = 2.0 * ((learner / 2 - expert / 2) / (space.high / 2 - space.low / 2))
    return np.linalg.norm(diff.reshape(diff.shape[0], -1), axis=1)


def intervention_gate(distance, threshold: float, hold: int, remaining):
    """Step 1 (intervention): ``(expert_in_control [N] bool, remaining [N] int)``.

    Rule: an expert already in control keeps it while ``remaining > 0`` (counting down);
    otherwise it takes over when ``distance > threshold`` and then keeps control for ``hold``
    steps in all (this one included). HG-DAgger's human takes over when the learner's behaviour
    looks unsafe and hands back once recovered; here "unsafe" is the learner acting far from
    what the expert would do, and "recovered" is a fixed hold.
    """
    distance = np.asarray(distance, np.float64)
    remaining = np.asarray(remaining, np.int64)
    holding = remaining > 0
    trigger = ~holding & (distance > threshold)
    control = holding | trigger
    new_remaining = np.where(holding, remaining - 1, np.where(trigger, hold - 1, 0))
    return control, new_remaining


class DAgger(BC):
    """DAgger / intervention imitation learning over any BC policy class."""

    name = "dagger"
    Config = DAggerConfig
    log_fields = ("loss", "labels", "beta", "expert_control")

    def __init__(self, env, config=None, seed: int = 0, demos: Demonstrations | None = None,
                 expert=None, **kwargs):
        self._expert_arg = expert
        super().__init__(env, config, seed, demos=demos, **kwargs)

    def _build(self) -> None:
        super()._build()
        # A loaded agent gets its expert when it trains on (its .npz need not exist any more).
        self.expert = None if loading() else self._make_expert()
        discrete = isinstance(self.action_space, spaces.Discrete)
        act_shape = () if discrete else self.action_space.shape
        act_dtype = np.int64 if discrete else np.float64
        self.data_obs = np.zeros((0, self.obs_dim))
        self.data_actions = np.zeros((0, *act_shape), act_dtype)
        self.extra_state.update(n_data=0, expert_queries=0, dagger_iteration=0)
        self._episodes = EpisodeStats(self.config.num_envs)
        self._obs = None
        self._remaining = np.zeros(self.config.num_envs, np.int64)

    def _make_expert(self):
        """The expert callable, checked against the env's spaces (ValueError naming expert)."""
        arg = self.config.expert if self._expert_arg is None else self._expert_arg
        expert = as_expert(arg, self.env_id)
        check_expert(expert, self.obs_space, self.action_space,
                     f"expert {arg!r}" if isinstance(arg, str) else "expert")
        return expert

    def check_training_inputs(self) -> None:
        """BC's demonstrations check when D starts from given demos, and the expert (made
        and checked in ``_build``, or here for a loaded agent)."""
        if self.extra_state["n_data"] == 0 and (self._demos is not None or self.config.demos):
            self.demonstrations()                       # (only step 0 reads them)
        elif self.extra_state["n_data"] == 0 and self._env_problem is not None:
            raise ValueError(f"DAgger cannot collect its initial expert episodes: "
                             f"{self._env_problem}; pass demos= or set config.demos")
        if self.expert is None:
            self.expert = self._make_expert()

    # ----- data ----------------------------------------------------------------------------

    def _initial_data(self) -> None:
        """Step 0's D: ``demos``/``config.demos`` if given, else ``init_episodes`` expert
        episodes (seeded by the agent's seed)."""
        if self._demos is None and not self.config.demos:
            env = self._single_env()
            try:
                self._demos = collect_demonstrations(self.expert, env, self.config.init_episodes,
                                                     10_000 * self.seed)
            finally:
                env.close()
        d = self.demonstrations()
        self._aggregate(d.obs, d.actions)

    def _single_env(self) -> gym.Env:
        """A fresh single env with raw observations, built as the agent's own envs were: from
        the id and ``env_kwargs``, or from the spec of the env object it was given."""
        if self.env_spec is not None:
            return gym.make(gym.envs.registration.EnvSpec.from_json(self.env_spec))
        return make_env(self.env_id, env_kwargs=self.env_kwargs, flatten=False)

    def _aggregate(self, obs: np.ndarray, actions: np.ndarray) -> None:
        """Step 3: D <- D u {(s', a*)} (flat un-normalized observations, env actions)."""
        actions = check_actions(actions, self.action_space, "expert actions")
        self.data_obs = np.concatenate([self.data_obs, np.asarray(obs, np.float64)])
        self.data_actions = np.concatenate([self.data_actions,
                                            actions.astype(self.data_actions.dtype)])
        self.extra_state["n_data"] = int(self.data_obs.shape[0])

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {**super().state_arrays(), "data_obs": self.data_obs,
                "data_actions": self.data_actions}

    def set_state_arrays(self, arrays, opt_steps) -> None:
        super().set_state_arrays(arrays, opt_steps)
        self.data_obs = arrays["data_obs"].copy()
        self.data_actions = arrays["data_actions"].copy()

    def _prepare_load(self, meta: dict) -> None:
        """Size the fresh agent's dataset D like the saved one, so ``load`` can check it."""
        n = int(meta.get("extra_state", {}).get("n_data", 0))
        self.data_obs = np.zeros((n, self.obs_dim))
        self.data_actions = np.zeros((n, *self.data_actions.shape[1:]), self.data_actions.dtype)

    # ----- training --------------------------------------------------------------------------

    def _update(self, n_updates: int) -> float:
        """Step 4 (and 0): minibatch Adam steps of the BC loss on all of D."""
        cfg = self.config
        if self.obs_normalizer is not None:
            # Statistics of all of D, refit as D grows: fit to the first demonstrations only
            # (a few near-identical states), states the learner later visits would land far
            # outside them and be clipped, losing exactly the corrective information.
            self.obs_normalizer = ObsNormalizer(self.obs_space.shape)
            self.obs_normalizer(self.data_obs, update=True)
        obs = self._normalize(self.data_obs)
        actions = self.policy_actions(self.data_actions)
        losses = []
        for _ in range(n_updates):
            idx = self.rng.integers(0, obs.shape[0], size=min(cfg.batch_size, obs.shape[0]))
            self.params, self.opt_states["policy"], loss = bc_step(
                self.policy, self.params, self.adam, self.opt_states["policy"], obs[idx],
                actions[idx], self.rng, cfg.max_grad_norm)
            losses.append(loss)
        self.best_params = self.params          # DAgger deploys the latest policy
        return float(np.mean(losses))

    def _restart(self) -> None:
        """Step 4 with ``warm_start=False``: fresh parameters and Adam state (from self.rng)."""
        self.params = self.policy.init(self.rng)
        self.opt_states["policy"] = self.adam.init(self.params)

    def _start_learning(self) -> None:
        """Fresh episodes at the start of every ``learn`` call, as a loaded agent has: the
        first rollout resets the envs (seed from ``self.rng``), no unfinished episode or
        intervention hold carries over."""
        self._obs = None
        self._remaining[:] = 0
        self._episodes = EpisodeStats(self.config.num_envs)

    def _rollout(self, beta: float, n_steps: int):
        """Steps 1-2: ``(label_obs, label_actions, n_expert_steps)`` of one rollout segment of
        ``n_steps`` env steps (rounded up to a multiple of num_envs)."""
        cfg, space = self.config, self.action_space
        n_envs = cfg.num_envs
        if self._obs is None:
            self._obs, _ = self.envs.reset(seed=int(self.rng.integers(2**31 - 1)))
            self._remaining[:] = 0
        lab_obs, lab_act, n_expert = [], [], 0
        for _ in range(-(-n_steps // n_envs)):
            raw = np.asarray(self._obs, np.float64).reshape(n_envs, -1)
            learner = self._to_env_actions(self.policy.act(
                self.params, self._normalize(raw), self.rng, cfg.deterministic_rollout))
            expert = np.asarray(self.expert(raw)).reshape(learner.shape)
            self.extra_state["expert_queries"] += n_envs
            if cfg.gate == "none":
                actions, control = mix_actions(learner, expert, beta, self.rng)
                labelled = np.ones(n_envs, bool)          # DAgger labels every visited state
            else:
                dist = action_distance(learner, expert, space)
                control, self._remaining = intervention_gate(dist, cfg.gate_threshold,
                                                             cfg.gate_hold, self._remaining)
                actions = np.where(control.reshape((-1,) + (1,) * (learner.ndim - 1)),
                                   expert, learner)
                labelled = control                        # only expert-controlled steps
            lab_obs.append(raw[labelled])
            lab_act.append(expert[labelled])
            n_expert += int(control.sum())
            self._obs, rewards, term, trunc, _ = self.envs.step(actions)
            ended = np.logical_or(term, trunc)
            self._episodes.track(np.asarray(rewards, np.float64), ended)
            self._remaining[ended] = 0                    # a new episode starts unsupervised
        return np.concatenate(lab_obs), np.concatenate(lab_act), n_expert

    def learn(self, total_steps: int, callback=None) -> "DAgger":
        """Run DAgger iterations until ``total_steps`` env steps have been rolled out."""
        total_steps = self._check_total_steps(total_steps)
        cfg, st = self.config, self.extra_state
        if self.expert is None:
            self.expert = self._make_expert()
        if st["n_data"] == 0:
            # 0. D from the expert's demonstrations; behaviour cloning on it.
            self._initial_data()
            self._update(cfg.updates_per_iter)
        self._start_learning()
        done = 0
        while done < total_steps:
            beta = dagger_beta(st["dagger_iteration"], cfg.beta0, cfg.beta_decay)
            steps = int(round(cfg.steps_per_iter * cfg.steps_growth ** st["dagger_iteration"]))
            # 1-2. Roll out (mixed with / taken over by the expert); expert labels.
            obs, actions, n_expert = self._rollout(beta, steps)
            n_steps = -(-steps // cfg.num_envs) * cfg.num_envs
            # 3. Aggregate D <- D u {(s', a*)}.
            if obs.shape[0]:
                self._aggregate(obs, actions)
            # 4. Update the policy on D (from fresh parameters unless warm_start).
            if not cfg.warm_start:
                self._restart()
            loss = self._update(cfg.updates_per_iter)
            st["dagger_iteration"] += 1
            done += n_steps
            if not self._end_iteration(callback, n_steps, episodes=self._episodes.pop(),
                                       loss=loss, labels=st["n_data"], beta=beta,
                                       expert_control=n_expert / n_steps):
                break
        return self
