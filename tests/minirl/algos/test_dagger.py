"""Tests for minirl/algos/dagger.py: beta schedule, action mixing, distances, the intervention
gate (hand-made sequences), label counting, aggregation, determinism and save/load."""
import numpy as np
import pytest
from gymnasium import spaces

from minirl.algos import ALGOS
from minirl.algos.dagger import (DAgger, DAggerConfig, action_distance, dagger_beta,
                                 intervention_gate, mix_actions)


def test_beta_schedule():
    assert [dagger_beta(i, 1.0, 0.5) for i in range(4)] == [1.0, 0.5, 0.25, 0.125]
    assert dagger_beta(3, 0.0, 0.5) == 0.0
    with pytest.raises(ValueError, match="iteration"):
        dagger_beta(-1, 1.0, 0.5)


def test_mix_actions_frequency_and_extremes():
    rng = np.random.default_rng(0)
    learner, expert = np.zeros((10_000, 2)), np.ones((10_000, 2))
    actions, mask = mix_actions(learner, expert, 0.3, rng)
    np.testing.assert_array_equal(actions[mask], 1.0)
    np.testing.assert_array_equal(actions[~mask], 0.0)
    assert abs(mask.mean() - 0.3) < 4 * np.sqrt(0.3 * 0.7 / 10_000)
    assert not mix_actions(learner, expert, 0.0, rng)[1].any()
    assert mix_actions(np.zeros(5, int), np.ones(5, int), 1.0, rng)[1].all()
    with pytest.raises(ValueError, match="differ in shape"):
        mix_actions(np.zeros(3), np.zeros(4), 0.5, rng)


def test_action_distance():
    np.testing.assert_array_equal(action_distance(np.array([0, 1, 1]), np.array([0, 0, 1]),
                                                  spaces.Discrete(2)), [0.0, 1.0, 0.0])
    box = spaces.Box(np.array([-2.0, 0.0]), np.array([2.0, 1.0]), dtype=np.float64)
    # Scaled to [-1, 1]: a difference of 1 in dim 0 (range 4) is 0.5; 0.5 in dim 1 (range 1) is 1.
    d = action_distance(np.array([[1.0, 0.5]]), np.array([[0.0, 0.0]]), box)
    assert d[0] == pytest.approx(np.hypot(0.5, 1.0))


def test_intervention_gate_takes_over_and_holds():
    dist = np.array([0.1, 0.9, 0.1, 0.1, 0.1, 0.9, 0.9, 0.1])
    remaining, control = np.zeros(1, np.int64), []
    for d in dist:
        c, remaining = intervention_gate(np.array([d]), 0.5, 3, remaining)
        control.append(bool(c[0]))
    # Takes over at step 1, holds for 3 steps (1, 2, 3), free at 4, takes over at 5 (5, 6, 7).
    assert control == [False, True, True, True, False, True, True, True]


def _cfg(**kw):
    base = dict(policy="categorical", init_episodes=1, steps_per_iter=100,
                updates_per_iter=50, batch_size=64)
    return DAggerConfig(**{**base, **kw})


def test_dagger_labels_every_visited_state():
    metrics = []
    agent = DAgger("CartPole-v1", _cfg(), seed=0)
    agent.learn(300, callback=lambda a, m: metrics.append(m))
    # D starts with one expert episode (500 pairs) and gains 100 labels per iteration.
    assert [m["labels"] for m in metrics] == [600, 700, 800]
    assert [m["steps"] for m in metrics] == [100, 200, 300]
    assert all(m["beta"] == 0.0 and m["expert_control"] == 0.0 for m in metrics)
    assert agent.data_obs.shape == (800, 4) and agent.extra_state["expert_queries"] == 300
    # The aggregated labels are the expert's actions at the visited states.
    np.testing.assert_array_equal(agent.data_actions[500:], agent.expert(agent.data_obs[500:]))


def test_growing_rollouts_double_D_and_cold_start_matches_bc():
    from minirl.algos.bc import BC, BCConfig
    from minirl.imitation import collect_demonstrations
    demos = collect_demonstrations("cartpole", "CartPole-v1", 1, seed=5).first_steps(40)
    kw = dict(policy="categorical", batch_size=64, val_fraction=0.0)
    cfg = _cfg(steps_per_iter=40, steps_growth=2.0, warm_start=False, updates_per_iter=30,
               **{k: v for k, v in kw.items() if k != "policy"})
    metrics, snapshots = [], []

    def record(agent, m):
        metrics.append(m)
        snapshots.append(agent.params.copy())

    agent = DAgger("CartPole-v1", cfg, seed=3, demos=demos)
    agent.learn(40 + 80 + 160, callback=record)
    # T_i = 40 * 2^i: D = 40 -> 80 -> 160 -> 320, the label grid BC is measured on.
    assert [m["labels"] for m in metrics] == [80, 160, 320]
    assert [m["steps"] for m in metrics] == [40, 120, 280]
    # Step 0 is exactly BC on the same data with the same training (same seed, same steps).
    a = DAgger("CartPole-v1", cfg, seed=3, demos=demos)
    a._initial_data()
    a._update(30)
    bc = BC("CartPole-v1", BCConfig(eval_interval=30, **kw), seed=3, demos=demos).learn(30)
    np.testing.assert_array_equal(a.params, bc.params)
    # Cold start: every iteration trains its 30 Adam steps from a fresh Adam state.
    assert agent.opt_states["policy"].step == 30
    warm = DAgger("CartPole-v1", _cfg(steps_per_iter=40, updates_per_iter=30, batch_size=64),
                  seed=3, demos=demos).learn(80)
    assert warm.opt_states["policy"].step == 90      # step 0 and two iterations, continued


def test_beta_one_executes_the_expert():
    metrics = []
    DAgger("CartPole-v1", _cfg(beta0=1.0, beta_decay=0.5), seed=0).learn(
        200, callback=lambda a, m: metrics.append(m))
    assert metrics[0]["beta"] == 1.0 and metrics[0]["expert_control"] == 1.0
    assert metrics[1]["beta"] == 0.5


def test_intervention_labels_only_expert_controlled_steps():
    metrics = []
    agent = DAgger("Pendulum-v1", _cfg(policy="l2", gate="intervention", gate_threshold=0.3,
                                       gate_hold=5, steps_per_iter=200), seed=0)
    agent.learn(600, callback=lambda a, m: metrics.append(m))
    added = np.diff([200] + [m["labels"] for m in metrics])     # one 200-step expert episode
    controlled = np.array([m["expert_control"] for m in metrics]) * 200
    np.testing.assert_array_equal(added, controlled)            # labels == expert steps
    assert agent.extra_state["expert_queries"] == 600           # the expert watched every step
    assert metrics[0]["expert_control"] > 0                     # a fresh learner gets corrected


def test_deterministic_and_save_load_with_the_aggregated_data(tmp_path):
    a = DAgger("CartPole-v1", _cfg(), seed=2).learn(200)
    b = DAgger("CartPole-v1", _cfg(), seed=2).learn(200)
    np.testing.assert_array_equal(a.params, b.params)
    np.testing.assert_array_equal(a.data_obs, b.data_obs)
    a.save(tmp_path / "dagger.npz")
    c = ALGOS["dagger"].load(tmp_path / "dagger.npz")
    np.testing.assert_array_equal(c.data_obs, a.data_obs)
    obs = a.data_obs[:10]
    np.testing.assert_array_equal(c.predict(obs, True), a.predict(obs, True))
    assert c.extra_state == a.extra_state
    # the generic loader, evaluation only (no training workers), and the CLI's eval path
    from minirl.algos import load
    from minirl.cli import main
    d = load(tmp_path / "dagger.npz", training=False)
    np.testing.assert_array_equal(d.data_obs, a.data_obs)
    np.testing.assert_array_equal(d.predict(obs, True), a.predict(obs, True))
    assert main(["eval", str(tmp_path / "dagger.npz"), "--episodes", "1"]) == 0


def test_config_errors():
    with pytest.raises(ValueError, match="gate must be"):
        DAggerConfig(gate="always")
    with pytest.raises(ValueError, match="beta0"):
        DAggerConfig(beta0=1.5)
    with pytest.raises(ValueError, match="steps_growth"):
        DAggerConfig(steps_growth=0.5)
    with pytest.raises(ValueError, match="warm_start"):
        DAggerConfig(warm_start="no")
    with pytest.raises(ValueError, match="expert 'nope'"):
        DAgger("CartPole-v1", _cfg(expert="nope"))


@pytest.mark.parametrize("gate", ["none", "intervention"])
def test_load_then_learn_continues_bit_for_bit(tmp_path, gate):
    """Every learn() starts fresh episodes (README): the env episode used to carry over from
    the previous learn() call in memory while a loaded agent reset, so their parameters
    differed after continuing."""
    cfg = _cfg(policy="l2", gate=gate, gate_threshold=0.3, gate_hold=5, steps_per_iter=150,
               beta0=0.5)
    a = DAgger("Pendulum-v1", cfg, seed=4).learn(150)    # ends mid-episode (200-step episodes)
    a.save(tmp_path / "d.npz")
    b = DAgger.load(tmp_path / "d.npz")
    a.learn(150)
    b.learn(150)
    assert np.array_equal(a.params, b.params)
    np.testing.assert_array_equal(a.data_obs, b.data_obs)
    assert a.extra_state == b.extra_state


def test_every_learn_call_starts_fresh_episodes():
    agent = DAgger("Pendulum-v1", _cfg(policy="l2", steps_per_iter=50), seed=0)
    lengths = []
    agent.learn(50)
    agent.learn(200, callback=lambda a, m: lengths.extend(m["episode_lengths"]))
    # a 200-step Pendulum episode begun in the second call ends exactly at its end (before:
    # the first call's episode went on and ended 50 steps into the second one)
    assert lengths == [200]


def test_action_distance_of_a_huge_finite_box():
    # high - low = 2.5e308 overflowed to inf: every distance was 0 (or NaN)
    space = spaces.Box(np.array([-1e308, -1e308]), np.array([1e308, 1.5e308]), dtype=np.float64)
    learner, expert = np.array([[-1e308, 1.5e308]]), np.array([[9e307, -2e307]])
    # per dimension 2 (a_L - a_E) / (high - low) = -1.9, 1.36
    np.testing.assert_allclose(action_distance(learner, expert, space),
                               [np.hypot(1.9, 1.36)], rtol=1e-15)
