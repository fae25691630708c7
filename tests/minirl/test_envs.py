"""Tests for minirl/envs.py: registration, known answers, vector-env construction."""
import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from minirl.envs import check_env_id, make_env, make_vector_env


def test_constant_reward_env_truncates_after_8_steps():
    env = make_env("minirl/ConstantReward-v0")
    env.reset(seed=0)
    flags = [env.step(0)[1:4] for _ in range(8)]
    assert all(r == 1.0 for r, _, _ in flags)
    assert [tr for _, _, tr in flags] == [False] * 7 + [True]
    assert not any(te for _, te, _ in flags)


def test_bandit_pays_arm_one_and_ends():
    env = make_env("minirl/Bandit-v0")
    env.reset(seed=0)
    assert env.step(1)[1:3] == (1.0, True)
    env.reset()
    assert env.step(0)[1:3] == (0.0, True)


def test_corridor_shortest_path_is_four_steps():
    env = make_env("minirl/Corridor-v0")
    obs, _ = env.reset(seed=0)
    assert obs.argmax() == 0
    for k in range(4):
        obs, r, term, trunc, _ = env.step(1)
        assert r == -1.0
    assert term and obs.argmax() == 4


def test_make_vector_env_same_step_sync_and_async():
    for mode in ("sync", "async"):
        envs = make_vector_env("CartPole-v1", 2, vectorization=mode)
        assert envs.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
        envs.close()


def test_make_vector_env_rejects_next_step_mode_and_bad_input():
    envs = gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1")])
    with pytest.raises(ValueError, match="SAME_STEP"):
        make_vector_env(envs)
    with pytest.raises(ValueError, match="num_envs"):
        make_vector_env("CartPole-v1", 0)
    with pytest.raises(ValueError, match="vectorization"):
        make_vector_env("CartPole-v1", 1, vectorization="threads")
    with pytest.raises(ValueError, match="NoSuchEnv-v0"):
        check_env_id("NoSuchEnv-v0")


def test_single_env_instance_is_wrapped():
    envs = make_vector_env(gym.make("minirl/Bandit-v0"))
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (1, 1) and np.all(obs == 1.0)


def test_parse_env_kwargs_types():
    from minirl.envs import parse_env_kwargs

    assert parse_env_kwargs(["continuous=true", "gravity=-9.8", "n=3", "name=8x8", "x=None"]) \
        == {"continuous": True, "gravity": -9.8, "n": 3, "name": "8x8", "x": None}
    with pytest.raises(ValueError, match="key=value"):
        parse_env_kwargs(["oops"])


def test_space_bandits_pay_their_best_actions():
    for env_id, best, worst in [("minirl/MultiDiscreteBandit-v0", [2, 0], [0, 1]),
                                ("minirl/MultiBinaryBandit-v0", [1, 0, 1], [0, 1, 0]),
                                ("minirl/OffsetBandit-v0", 1, -1)]:
        env = make_env(env_id)
        env.reset(seed=0)
        assert env.step(np.array(best))[1] == 1.0
        env.reset()
        assert env.step(np.array(worst))[1] == 0.0
    with pytest.raises(ValueError, match="not in"):
        env = make_env("minirl/OffsetBandit-v0")
        env.reset(seed=0)
        env.step(2)                              # an index that was not offset by start


CUSTOM_MODULE = '''
import gymnasium as gym
import numpy as np


class Coin(gym.Env):
    """Guess heads (action 1): reward 1, one step."""
    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action):
        return np.zeros(2, np.float32), float(action == 1), True, False, {}


gym.register(id="MinirlTestCoin-v0", entry_point=Coin)
'''


def test_module_colon_env_id_imports_the_module_that_registers_it(tmp_path, monkeypatch,
                                                                  capsys):
    """gymnasium.make's ``module:EnvId`` form for custom envs (was: 'unknown environment id
    ... not in gymnasium's registry')."""
    from minirl.cli import main

    (tmp_path / "minirl_test_coin_env.py").write_text(CUSTOM_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    env_id = "minirl_test_coin_env:MinirlTestCoin-v0"
    assert check_env_id(env_id) == env_id
    envs = make_vector_env(env_id, num_envs=2)
    assert envs.single_observation_space.shape == (2,)
    envs.close()
    out = tmp_path / "run"
    assert main(["train", "ppo", "--env", env_id, "--steps", "64", "--quiet", "--out", str(out),
                 "--set", "num_envs=1", "--set", "num_steps=64", "--set", "hidden_sizes=8",
                 "--set", "minibatch_size=32", "--set", "num_epochs=1"]) == 0
    assert main(["eval", str(out), "--episodes", "2"]) == 0
    assert f"ppo {env_id}: mean return" in capsys.readouterr().out
    for bad, needle in (("minirl_no_such_module_x:MinirlTestCoin-v0",
                         "cannot import module 'minirl_no_such_module_x'"),
                        ("minirl_test_coin_env:NoSuchEnv-v0",
                         "registers no environment 'NoSuchEnv-v0'"),
                        ("a:b:c", "expected an id or module:EnvId")):
        with pytest.raises(ValueError, match=needle):
            check_env_id(bad)
        assert main(["train", "ppo", "--env", bad, "--out", str(tmp_path / "no")]) == 2
        err = capsys.readouterr().err.strip()
        assert needle in err and "\n" not in err and not (tmp_path / "no").exists(), err


DICT_MODULE = '''
import gymnasium as gym
import numpy as np
from gymnasium import spaces


class DictCoin(gym.Env):
    observation_space = spaces.Dict({"a": spaces.Box(-1, 1, (2,), np.float32),
                                     "b": spaces.Discrete(3)})
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return {"a": np.zeros(2, np.float32), "b": 1}, {}

    def step(self, action):
        return {"a": np.zeros(2, np.float32), "b": 2}, float(action == 1), True, False, {}


gym.register(id="MinirlTestDictCoin-v0", entry_point=DictCoin)
'''


def test_eval_of_a_custom_module_env_with_dict_observations_in_a_fresh_process(
        tmp_path, monkeypatch, capsys):
    """``minirl eval`` in a new process (the module not imported, the id not registered yet)
    probed the env's raw space only for registered ids, recorded the flattened Box and refused
    the model ('trained with observation space Dict(...), but the env given has Box')."""
    import sys

    from minirl.cli import main

    (tmp_path / "minirl_test_dict_coin_env.py").write_text(DICT_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    env_id = "minirl_test_dict_coin_env:MinirlTestDictCoin-v0"
    out = tmp_path / "run"
    assert main(["train", "ppo", "--env", env_id, "--steps", "64", "--quiet", "--out", str(out),
                 "--set", "num_envs=1", "--set", "num_steps=64", "--set", "hidden_sizes=8",
                 "--set", "minibatch_size=32", "--set", "num_epochs=1"]) == 0
    gym.envs.registry.pop("MinirlTestDictCoin-v0")          # as in a fresh process
    sys.modules.pop("minirl_test_dict_coin_env")
    capsys.readouterr()
    assert main(["eval", str(out), "--episodes", "2"]) == 0, capsys.readouterr().err
    assert f"ppo {env_id}: mean return" in capsys.readouterr().out


def test_true_next_obs_replaces_only_the_rows_that_autoreset():
    from minirl.envs import make_vector_env, true_next_obs
    envs = make_vector_env("minirl/ConstantReward-v0", num_envs=2)   # truncated after 8 steps
    envs.reset(seed=0)
    for t in range(8):
        next_obs, _, term, trunc, infos = envs.step(np.zeros(2, np.int64))
        got = true_next_obs(next_obs, infos)
        if t < 7:
            assert got is next_obs                      # nothing reset: no copy
        else:
            assert trunc.all() and got is not next_obs
            np.testing.assert_array_equal(got, np.stack(infos["final_obs"]))
    out = np.full((2, 1), -5.0)
    mask = {"_final_obs": np.array([False, True]),
            "final_obs": np.array([None, np.array([7.0])], dtype=object)}
    before = np.array([[1.0], [2.0]])
    assert true_next_obs(before, mask, out=out) is out
    np.testing.assert_array_equal(out, [[1.0], [7.0]])
    np.testing.assert_array_equal(before, [[1.0], [2.0]])   # never modified
    envs.close()
