"""Tests for minirl/algos/bc.py: the tested steps (episode split, Adam step, validation loss),
cloning CartPole's expert, early stopping, determinism, save/load and config errors."""
import numpy as np
import pytest

from minirl.algos import ALGOS
from minirl.algos.bc import BC, BCConfig, bc_step, default_policy, split_episodes, validation_loss
from minirl.imitation import collect_demonstrations
from minirl.imitation.policies import make_policy
from minirl.nn import Adam


@pytest.fixture(scope="module")
def cartpole_demos():
    return collect_demonstrations("cartpole", "CartPole-v1", 4, seed=0)


def test_split_episodes_holds_out_whole_episodes():
    lengths = np.array([3, 2, 4, 1, 5])
    train, val = split_episodes(lengths, 0.4, np.random.default_rng(0))
    assert np.intersect1d(train, val).size == 0 and train.size + val.size == 15
    starts = np.r_[0, np.cumsum(lengths)[:-1]]
    episode_of = np.repeat(np.arange(5), lengths)
    held = np.unique(episode_of[val])
    assert held.size == 2                                       # round(0.4 * 5)
    for e in held:                                              # every step of a held episode
        assert set(range(starts[e], starts[e] + lengths[e])) <= set(val.tolist())
    assert split_episodes(lengths, 0.0, np.random.default_rng(0))[1].size == 0
    assert split_episodes(np.array([7]), 0.5, np.random.default_rng(0))[1].size == 0  # E = 1
    train, val = split_episodes(np.array([2, 2]), 0.9, np.random.default_rng(0))
    assert train.size == 2 and val.size == 2                    # never all episodes


def test_bc_step_is_one_adam_step_on_the_policy_loss():
    from gymnasium import spaces
    pol = make_policy("l2", 3, spaces.Box(-1, 1, (2,)), (8,))
    rng = np.random.default_rng(0)
    params = pol.init(rng)
    obs, act = rng.standard_normal((16, 3)), rng.uniform(-1, 1, (16, 2))
    adam = Adam(lr=1e-2)
    state = adam.init(params)
    new, state2, loss = bc_step(pol, params, adam, state, obs, act, rng, max_grad_norm=1e9)
    value, grad = pol.loss(params, obs, act)
    want, _ = adam.step(params, grad, adam.init(params))
    assert loss == value
    np.testing.assert_array_equal(new, want)
    assert pol.loss(new, obs, act)[0] < value and state2.step == 1


def test_validation_loss_is_a_fixed_function_of_the_parameters():
    from gymnasium import spaces
    pol = make_policy("diffusion", 2, spaces.Box(-1, 1, (1,)), (8,), diffusion_steps=5)
    params = pol.init(np.random.default_rng(0))
    obs, act = np.random.default_rng(1).standard_normal((10, 2)), np.zeros((10, 1))
    a = validation_loss(pol, params, obs, act, seed=3, batch_size=4)
    assert a == validation_loss(pol, params, obs, act, seed=3, batch_size=4)
    # Batched: the weighted mean over batches (one draw stream), not a mean of batch means.
    rng = np.random.default_rng(3)
    parts = [pol.loss(params, obs[s:s + 4], act[s:s + 4], rng)[0] * len(obs[s:s + 4])
             for s in (0, 4, 8)]
    assert a == pytest.approx(sum(parts) / 10)


def test_bc_clones_the_cartpole_expert(cartpole_demos):
    metrics = []
    agent = BC("CartPole-v1", BCConfig(policy="categorical", eval_interval=200), seed=0,
               demos=cartpole_demos)
    agent.learn(1000, callback=lambda a, m: metrics.append(m))
    assert [m["steps"] for m in metrics] == [200, 400, 600, 800, 1000]
    assert metrics[-1]["val_loss"] < metrics[0]["val_loss"] and metrics[-1]["val_loss"] < 0.1
    assert agent.evaluate(3, seed=100).min() == 500.0
    assert default_policy("auto", agent.action_space) == "categorical"


def test_early_stopping_keeps_the_best_parameters(cartpole_demos):
    agent = BC("CartPole-v1", BCConfig(policy="l2", eval_interval=10, patience=2, lr=0.5,
                                       val_fraction=0.5), seed=0, demos=cartpole_demos)
    vals = []
    agent.learn(2000, callback=lambda a, m: vals.append(m["val_loss"]))
    assert agent.extra_state["stopped"] and len(vals) < 200      # stopped early
    best = int(np.argmin(vals))
    assert len(vals) - 1 - best == 2                            # patience 2 after the best
    assert agent.extra_state["best_val_loss"] == min(vals)
    assert not np.array_equal(agent.best_params, agent.params)


def test_deterministic_and_save_load_continue_bit_for_bit(cartpole_demos, tmp_path):
    cfg = BCConfig(policy="categorical", eval_interval=50)
    a = BC("CartPole-v1", cfg, seed=3, demos=cartpole_demos).learn(100)
    b = BC("CartPole-v1", cfg, seed=3, demos=cartpole_demos).learn(100)
    np.testing.assert_array_equal(a.params, b.params)
    path = tmp_path / "demos.npz"
    cartpole_demos.save_npz(path)
    c = BC("CartPole-v1", BCConfig(demos=str(path), eval_interval=50), seed=3).learn(100)
    np.testing.assert_array_equal(a.params, c.params)          # from the file: same run
    c.save(tmp_path / "bc.npz")
    d = ALGOS["bc"].load(tmp_path / "bc.npz")
    np.testing.assert_array_equal(d.best_params, c.best_params)
    obs = cartpole_demos.obs[:20]
    np.testing.assert_array_equal(d.predict(obs, True), c.predict(obs, True))
    c.learn(100)
    d.learn(100)
    np.testing.assert_array_equal(c.params, d.params)


def test_bc_with_minari_demos(cartpole_demos, tmp_path):
    pytest.importorskip("minari")
    cartpole_demos.to_minari("minirl/cp-v0", tmp_path)
    a = BC("CartPole-v1", BCConfig(demos=str(tmp_path / "minirl" / "cp-v0"), eval_interval=50),
           seed=1).learn(50)
    b = BC("CartPole-v1", BCConfig(eval_interval=50), seed=1, demos=cartpole_demos).learn(50)
    np.testing.assert_array_equal(a.params, b.params)


def test_config_and_data_errors(cartpole_demos):
    with pytest.raises(ValueError, match="policy must be"):
        BCConfig(policy="gan")
    with pytest.raises(ValueError, match="batch_size"):
        BCConfig(batch_size=0)
    with pytest.raises(ValueError, match="BC needs demonstrations"):
        BC("CartPole-v1").learn(10)
    with pytest.raises(ValueError, match="observation space"):
        BC("Pendulum-v1", demos=cartpole_demos).learn(10)
    with pytest.raises(TypeError, match="demos must be a Demonstrations"):
        BC("CartPole-v1", demos="x.npz")
    with pytest.raises(TypeError, match="needs a Box"):
        BC("CartPole-v1", BCConfig(policy="mog"))


def test_cli_trains_bc_from_a_demos_file(cartpole_demos, tmp_path):
    from minirl.cli import main
    cartpole_demos.save_npz(tmp_path / "demos.npz")
    out = tmp_path / "run"
    assert main(["train", "bc", "--env", "CartPole-v1", "--demos", str(tmp_path / "demos.npz"),
                 "--set", "policy=categorical", "--set", "eval_interval=50", "--steps", "100",
                 "--out", str(out), "--quiet"]) == 0
    agent = ALGOS["bc"].load(out / "model.npz")
    assert agent.config.demos == str(tmp_path / "demos.npz") and agent.total_steps == 100
