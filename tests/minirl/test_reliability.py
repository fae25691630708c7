"""Runs that never lose or mix results, and no silent wrong numbers — through the public path.

Every test here drives the agent objects or the ``minirl`` command line (``main([...])``, or a
subprocess where a real signal is needed) and checks the right value, the exit status and the
one-line message.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from minirl.algos import PPO, PPOConfig, load
from minirl.cli import main
from minirl.logger import read_csv

REPO = Path(__file__).resolve().parents[2]
TINY = ["--set", "num_epochs=1", "--set", "hidden_sizes=8", "--set", "num_steps=64",
        "--set", "num_envs=1", "--set", "minibatch_size=32"]


def _train(out, *extra, env="minirl/Bandit-v0", steps="256"):
    return main(["train", "ppo", "--env", env, "--steps", steps, "--quiet", "--out", str(out),
                 *TINY, *extra])


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err.strip()
    assert err.startswith("minirl: error:") and "\n" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


# -- item 1: reward scaling through the agent --------------------------------------------------

def test_ppo_reward_scaling_accumulates_the_discounted_return():
    agent = PPO("minirl/ConstantReward-v0",
                PPOConfig(num_envs=1, num_steps=16, gamma=0.9, normalize_reward=True), seed=0)
    agent.learn(16)
    # returns 10 (1 - 0.9^k), k = 1..8, twice (the time limit truncates after 8 steps)
    rets = 10 * (1 - 0.9 ** np.arange(1, 9))
    np.testing.assert_allclose(agent.reward_scaler.rms.var, rets.var(), rtol=1e-12)
    np.testing.assert_allclose(agent.reward_scaler.rms.var, 2.362, atol=5e-4)
    last = agent.collector.buffer.rewards[-1, 0]
    np.testing.assert_allclose(last, 1 / np.sqrt(rets.var() + 1e-8), rtol=1e-6)
    np.testing.assert_allclose(last, 0.651, atol=5e-4)
    # the very first reward passes through unscaled (Var[ret] was still 0), none is clipped
    assert agent.collector.buffer.rewards[0, 0] == 1.0
    assert agent.collector.buffer.rewards.max() < 10.0


# -- item 4: float32 gradients that overflow no longer stall training --------------------------

@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_rewards_times_1e20_still_move_the_parameters():
    env = gym.wrappers.TransformReward(gym.make("CartPole-v1"), lambda r: r * 1e20)
    agent = PPO(env, PPOConfig(num_envs=1, num_steps=64, num_epochs=1, minibatch_size=32,
                               hidden_sizes=(8,)), seed=0)
    before = agent.params.copy()
    agent.learn(128)
    assert np.isfinite(agent.params).all()
    assert np.abs(agent.params - before).max() > 1e-4  # the old clip returned 0 * grad


# -- items 6, 7: run directories are never silently overwritten; writes are atomic -------------

def test_non_empty_run_dir_is_refused_unless_force(tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(out) == 0
    model = (out / "model.npz").read_bytes()
    capsys.readouterr()
    assert _train(out, "--seed", "1") == 2
    _one_line_error(capsys, f"--out {out} is not empty", "--force", "--resume")
    assert (out / "model.npz").read_bytes() == model
    assert json.loads((out / "config.json").read_text())["seed"] == 0
    (out / "notes.txt").write_text("mine")  # --force removes minirl's files, not the user's
    assert _train(out, "--seed", "1", "--force") == 0
    assert json.loads((out / "config.json").read_text())["seed"] == 1
    assert load(out / "model.npz").seed == 1 and (out / "notes.txt").read_text() == "mine"
    assert {p.name for p in out.iterdir()} == {"config.json", "progress.csv", "model.npz",
                                               "curve.png", "notes.txt"}
    assert oct((out / "model.npz").stat().st_mode & 0o777) != oct(0o600)  # usual permissions


def test_failed_saves_leave_the_previous_files_intact(tmp_path, monkeypatch):
    agent = PPO("minirl/Bandit-v0", PPOConfig(num_envs=1, num_steps=64, hidden_sizes=(8,)))
    path = tmp_path / "model.npz"
    agent.save(path)
    good = path.read_bytes()
    agent.learn(64)

    def full_disk(f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a zip file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", full_disk)
    with pytest.raises(OSError, match="No space"):
        agent.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == good and os.listdir(tmp_path) == ["model.npz"]  # no temp left
    assert load(path).total_steps == 0

    import matplotlib.pyplot as plt

    from minirl.io import atomic_write_text, save_figure
    atomic_write_text(tmp_path / "config.json", "old")
    with pytest.raises(ZeroDivisionError):
        from minirl.io import atomic_open
        with atomic_open(tmp_path / "config.json", "w") as f:
            f.write("new, half written")
            1 / 0
    assert (tmp_path / "config.json").read_text() == "old"
    fig = plt.figure()
    png = save_figure(fig, tmp_path / "curve")  # no suffix: .png is added and reported
    assert png == tmp_path / "curve.png" and png.read_bytes()[:4] == b"\x89PNG"
    monkeypatch.setattr(fig, "savefig", lambda *a, **k: (_ for _ in ()).throw(OSError(28, "full")))
    with pytest.raises(OSError):
        save_figure(fig, png)
    plt.close(fig)
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert sorted(os.listdir(tmp_path)) == ["config.json", "curve.png", "model.npz"]


# -- item 8: SIGINT / SIGTERM save and exit 130 / 143; eval and --resume afterwards ------------

def _interrupt(out, sig, *extra, group=False, steps=10_000_000):
    """Start a long CLI training run, wait for its first rows, send ``sig`` (to its whole
    process group if ``group``, as a terminal's Ctrl-C does); (code, stderr)."""
    cmd = [sys.executable, "-m", "minirl.cli", "train", "ppo", "--env", "CartPole-v1",
           "--steps", str(steps), "--quiet", "--out", str(out), *TINY, *extra]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=group)
    live = out / ".progress.csv.live"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if live.is_file() and live.read_text().count("\n") >= 4:  # header + 3 iterations
            break
        time.sleep(0.05)
    if group:
        os.killpg(proc.pid, sig)  # its own session: the group is the run and its env workers
    else:
        proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err.strip()


def test_sigint_saves_then_eval_and_resume_continue_the_run(tmp_path, capsys):
    out = tmp_path / "run"
    code, err = _interrupt(out, signal.SIGINT)
    assert code == 130, err
    assert err.startswith("minirl: interrupted at step ") and "\n" not in err
    steps = int(err.split("at step ")[1].split(";")[0])
    assert steps >= 192 and steps % 64 == 0  # whole iterations only
    agent = load(out / "model.npz")
    assert agent.total_steps == steps
    cols = read_csv(out / "progress.csv")
    assert cols["steps"][-1] == steps  # the CSV matches the model
    assert (out / "curve.png").is_file() and not (out / ".progress.csv.live").exists()

    assert main(["eval", str(out), "--episodes", "2"]) == 0
    assert "over 2 episodes" in capsys.readouterr().out

    assert main(["train", "--resume", str(out), "--steps", str(steps + 128), "--quiet"]) == 0
    capsys.readouterr()
    resumed = load(out / "model.npz")
    assert resumed.total_steps == steps + 128 and resumed.iterations == agent.iterations + 2
    after = read_csv(out / "progress.csv")
    np.testing.assert_array_equal(after["steps"][:len(cols["steps"])], cols["steps"])
    np.testing.assert_array_equal(after["steps"][-2:], [steps + 64, steps + 128])
    assert np.all(np.diff(after["wall_time"]) >= 0)  # the clock continues too
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["steps"] == steps + 128 and cfg["algo"] == "ppo"
    # nothing to do: already trained to the target
    assert main(["train", "--resume", str(out), "--quiet"]) == 2
    _one_line_error(capsys, "already trained")
    assert main(["train", "ppo", "--resume", str(out)]) == 2
    _one_line_error(capsys, "drop ALGO")


def test_sigterm_saves_and_exits_143(tmp_path):
    out = tmp_path / "run"
    code, err = _interrupt(out, signal.SIGTERM)
    assert code == 143, err
    assert "interrupted at step" in err and "saved" in err
    assert load(out / "model.npz").total_steps == read_csv(out / "progress.csv")["steps"][-1]


def test_ctrl_c_to_the_process_group_with_async_env_workers(tmp_path):
    out = tmp_path / "run"
    code, err = _interrupt(out, signal.SIGINT, "--set", "vectorization=async", group=True)
    assert code == 130, err  # the workers ignored the Ctrl-C, so the last iteration finished
    assert err.startswith("minirl: interrupted at step ") and "\n" not in err
    assert load(out / "model.npz").total_steps == read_csv(out / "progress.csv")["steps"][-1]


def test_checkpoint_every_saves_along_the_way(tmp_path, monkeypatch):
    out = tmp_path / "run"
    seen = []
    real = PPO.save

    def spy(self, path):
        seen.append(self.total_steps)
        real(self, path)

    monkeypatch.setattr(PPO, "save", spy)
    assert _train(out, "--checkpoint-every", "128", steps="448") == 0
    assert seen == [128, 256, 384, 448]


# -- item 12: file and runtime errors are one line with a non-zero exit -------------------------

def test_unwritable_output_directory(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert _train(blocker / "run") == 2
    _one_line_error(capsys, "cannot write to", "a_file")


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04truncated", os.urandom(256), "tampered"])
def test_eval_of_a_broken_model_file(tmp_path, capsys, content):
    out = tmp_path / "run"
    assert _train(out) == 0
    model = out / "model.npz"
    if content == "tampered":  # a valid npz whose params have the wrong shape
        with np.load(model) as data:
            arrays = {k: data[k] for k in data.files}
        arrays["params"] = arrays["params"][:-1]
        np.savez(model, **arrays)
    else:
        model.write_bytes(content)
    capsys.readouterr()
    assert main(["eval", str(out)]) == 2
    _one_line_error(capsys, str(model))


def test_eval_and_train_name_a_negative_seed(tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(out) == 0
    capsys.readouterr()
    assert main(["eval", str(out), "--seed", "-1"]) == 2
    _one_line_error(capsys, "--seed")
    assert _train(tmp_path / "other", "--seed", "-1") == 2
    _one_line_error(capsys, "--seed", "-1")
    assert not (tmp_path / "other").exists()


def test_plot_errors_and_the_path_it_writes(tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(out) == 0
    capsys.readouterr()
    assert main(["plot", str(out), "--out", str(tmp_path / "noext")]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {tmp_path / 'noext.png'}"
    assert (tmp_path / "noext.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["plot", str(out), "--out", str(tmp_path / "missing" / "x.png")]) == 2
    _one_line_error(capsys, "--out", "missing")
    assert main(["plot", str(out), "--out", str(tmp_path / "x.nosuchformat")]) == 2
    _one_line_error(capsys, "nosuchformat")
    bad = tmp_path / "bad.csv"
    for text in ("steps,return_mean_100\n1,abc\n", "\x00\x01binary", "a,b\n1,2\n",
                 "steps,return_mean_100\n1\n"):
        bad.write_text(text)
        assert main(["plot", str(bad), "--out", str(tmp_path / "y.png")]) == 2
        _one_line_error(capsys, str(bad))


def test_divergence_names_the_iteration_and_keeps_the_last_good_model(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "ppo", "--env", "Pendulum-v1", "--steps", "20000", "--quiet",
                 "--out", str(out), "--set", "lr=1e3"])
    assert code == 1
    err = _one_line_error(capsys, "training diverged in iteration")
    agent = load(out / "model.npz")
    assert np.isfinite(agent.params).all()
    assert f"after step {agent.total_steps}" in err
    assert read_csv(out / "progress.csv")["steps"][-1] == agent.total_steps


def test_a_run_without_finished_episodes_does_not_print_nan(tmp_path, capsys):
    assert _train(tmp_path / "run", env="Pendulum-v1", steps="64") == 0
    out = capsys.readouterr().out
    assert "no episode finished" in out and "nan" not in out


# -- item 10: config values that make no sense are refused by name ------------------------------

@pytest.mark.parametrize("text,needle", [
    ("lr=inf", "lr must be finite"), ("vf_coef=inf", "vf_coef must be finite"),
    ("ent_coef=inf", "ent_coef must be finite"), ("kl_beta=inf", "kl_beta must be finite"),
    ("log_std_init=nan", "log_std_init must be finite"), ("lr=nan", "lr must be finite"),
    ("max_grad_norm=nan", "max_grad_norm"),
])
def test_cli_refuses_non_finite_config_values_before_writing(tmp_path, capsys, text, needle):
    out = tmp_path / "run"
    assert _train(out, "--set", text) == 2
    _one_line_error(capsys, needle)
    assert not out.exists()


def test_config_types_are_checked_not_coerced():
    for kwargs, needle in ((dict(anneal_lr="no"), "anneal_lr must be a bool"),
                           (dict(hidden_sizes=(64.7,)), "hidden_sizes"),
                           (dict(num_epochs=2.0), "num_epochs must be an integer"),
                           (dict(num_envs=True), "num_envs must be an integer"),
                           (dict(lr="3e-4"), "lr must be a number"),
                           (dict(activation=1), "activation")):
        with pytest.raises(ValueError, match=needle):
            PPOConfig(**kwargs)
    assert PPOConfig(max_grad_norm=float("inf")).max_grad_norm == float("inf")  # = no clipping


# -- item 11: learn() and seeds ------------------------------------------------------------------

def test_learn_and_seed_rules_name_their_argument():
    agent = PPO("minirl/Bandit-v0", PPOConfig(num_envs=1, num_steps=16, hidden_sizes=(8,)))
    state = agent.rng.bit_generator.state
    for bad in (0, -1):
        with pytest.raises(ValueError, match="total_steps"):
            agent.learn(bad)
    assert agent.rng.bit_generator.state == state  # nothing drawn, nothing reset
    for seed, err in ((1.5, TypeError), ("3", TypeError), (None, TypeError), (-1, ValueError)):
        with pytest.raises(err, match="seed"):
            PPO("minirl/Bandit-v0", PPOConfig(num_envs=1), seed=seed)


# -- items 13, 14: load rebuilds the env it was trained on (wrappers included) or asks for it ---

def test_a_wrapped_env_is_rebuilt_with_its_wrappers(tmp_path):
    cfg = PPOConfig(num_envs=1, num_steps=16, hidden_sizes=(8,))
    env = gym.wrappers.ClipReward(gym.make("minirl/ConstantReward-v0"), 0.0, 0.5)
    agent = PPO(env, cfg)
    np.testing.assert_array_equal(agent.evaluate(1), [4.0])  # 8 steps x 0.5, not 8 x 1
    agent.save(tmp_path / "m.npz")
    loaded = load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.evaluate(1), [4.0])
    flat = PPO(gym.wrappers.FlattenObservation(gym.make("FrozenLake-v1")), cfg)
    flat.save(tmp_path / "f.npz")
    assert "FlattenObservation" in load(tmp_path / "f.npz").env_spec
    assert load(tmp_path / "f.npz").evaluate(2, seed=0).shape == (2,)


def test_an_env_that_cannot_be_rebuilt_asks_for_env(tmp_path):
    from minirl.envs import ConstantRewardEnv
    cfg = PPOConfig(num_envs=1, num_steps=16, hidden_sizes=(8,))
    doubled = gym.wrappers.TransformReward(gym.make("minirl/ConstantReward-v0"), lambda r: 2 * r)
    agent = PPO(doubled, cfg)
    with pytest.raises(ValueError, match="evaluate: cannot rebuild the env.*pass env="):
        agent.evaluate(1)  # not silently on the bare ConstantReward-v0
    np.testing.assert_array_equal(agent.evaluate(1, env=doubled), [16.0])
    agent.save(tmp_path / "t.npz")
    with pytest.raises(ValueError, match="t.npz: cannot rebuild the agent's env.*pass env="):
        load(tmp_path / "t.npz")
    assert load(tmp_path / "t.npz", env=doubled).evaluate(1, env=doubled)[0] == 16.0
    vec = gym.vector.SyncVectorEnv([ConstantRewardEnv],
                                   autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    PPO(vec, cfg).save(tmp_path / "v.npz")
    with pytest.raises(ValueError, match="vector env without a registered id.*pass env="):
        load(tmp_path / "v.npz")


def test_evaluation_only_load_starts_no_worker_processes(tmp_path):
    agent = PPO("CartPole-v1", PPOConfig(num_envs=2, num_steps=16, vectorization="async",
                                         hidden_sizes=(8,)))
    agent.save(tmp_path / "m.npz")
    agent.envs.close()
    loaded = load(tmp_path / "m.npz", training=False)
    assert isinstance(loaded.envs, gym.vector.SyncVectorEnv)
    np.testing.assert_array_equal(loaded.params, agent.params)
    assert loaded.evaluate(1, seed=0).shape == (1,)


# -- the same kinds found elsewhere: float32 norms and an optional array -----------------------

def test_other_float32_norms_and_optional_arrays():
    from minirl.algos.ppo import normalize_advantages
    from minirl.objectives.value import explained_variance, value_loss
    adv = np.array([1e20, -1e20, 3e20], np.float32)  # squares overflow float32
    np.testing.assert_allclose(normalize_advantages(adv), [0.0, -1.5**0.5, 1.5**0.5], rtol=1e-6)
    assert explained_variance(np.zeros(3, np.float32), adv) == 0.0  # not inf / inf = NaN
    with pytest.raises(ValueError, match="values_old"):
        value_loss(np.zeros(2), np.ones(2), None, clip=0.2)
    with pytest.raises(ValueError, match="clip"):
        value_loss(np.zeros(2), np.ones(2), np.zeros(2), clip=float("nan"))


def test_resumed_run_continues_its_lr_schedule_where_the_interrupt_left_it(tmp_path, capsys):
    """lr annealed over the whole run: the CSV's lr column after an interrupt and --resume is
    exactly lr0 * (1 - k / n_iters) for every iteration k, as in an uninterrupted run."""
    out = tmp_path / "run"
    code, err = _interrupt(out, signal.SIGINT, "--set", "anneal_lr=true", "--set", "lr=0.001",
                           steps=6400)
    assert code == 130, err
    done = load(out / "model.npz").total_steps
    assert 0 < done < 6400
    assert main(["train", "--resume", str(out), "--quiet"]) == 0
    lr = read_csv(out / "progress.csv")["lr"]
    k = np.arange(100)
    assert len(lr) == 100
    np.testing.assert_allclose(lr, 0.001 * (1.0 - k / 100), rtol=1e-7)


def test_save_to_a_directory_names_the_directory(tmp_path):
    # was: IsADirectoryError naming a temporary file in the directory's parent
    from minirl.algos import PPO, PPOConfig
    target = tmp_path / "run"
    target.mkdir()
    agent = PPO("CartPole-v1", PPOConfig(num_envs=1, num_steps=16), seed=0)
    with pytest.raises(IsADirectoryError, match=r"is a directory, not a file path: .*run") as e:
        agent.save(target)
    assert e.value.filename == str(target) and sorted(tmp_path.iterdir()) == [target]


def test_resume_keeps_the_evaluations_the_best_score_and_the_eval_schedule(tmp_path, capsys):
    """An interrupted run with --eval-every, resumed without repeating the flag: the earlier
    rows of evaluations.csv stay, evaluation goes on at the multiples of --eval-every, and
    best_model.npz holds the best evaluation of the whole run."""
    from minirl.evaluation import read_evaluations

    out = tmp_path / "run"
    code, err = _interrupt(out, signal.SIGINT, "--eval-every", "128", "--eval-episodes", "2",
                           steps=2560)
    assert code == 130, err
    before = read_evaluations(out)
    done = load(out / "model.npz").total_steps
    assert len(before["steps"]) >= 1 and before["steps"][-1] <= done
    assert main(["train", "--resume", str(out), "--quiet"]) == 0
    capsys.readouterr()
    after = read_evaluations(out)
    n = len(before["steps"])
    np.testing.assert_array_equal(after["steps"][:n], before["steps"])
    np.testing.assert_array_equal(after["eval_return_mean"][:n], before["eval_return_mean"])
    np.testing.assert_array_equal(after["steps"], np.arange(1, 21) * 128)  # every 128 steps
    best = load(out / "best_model.npz")
    i = int(np.argmax(after["eval_return_mean"]))  # the first best evaluation
    assert best.total_steps == after["steps"][i]


def test_an_env_option_of_the_wrong_type_is_one_line_naming_env_kwargs(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "ppo", "--env", "Pendulum-v1", "--env-kwargs", "g=abc", "--steps",
                 "64", "--quiet", "--out", str(out), *TINY])
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("minirl: error: training failed in iteration 1") and "\n" not in err
    assert "TypeError" in err and "--env-kwargs" in err


@pytest.mark.parametrize("value", ["-1e308", "25", "-21"])
def test_log_std_init_outside_a_representable_range_exits_2(value, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "ppo", "--env", "Pendulum-v1", "--set", f"log_std_init={value}",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "log_std_init must be in [-20.0, 20.0]" in err and "\n" not in err
    assert not out.exists()


def test_eval_of_an_npz_that_is_no_saved_agent_says_so(tmp_path, capsys):
    path = tmp_path / "demos.npz"
    np.savez(path, meta=np.array(json.dumps({"kind": "demonstrations"})), obs=np.zeros(3))
    assert main(["eval", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "is not a saved minirl agent" in err and "\n" not in err


# -- tampered model values are refused at load, naming the file and the field ----------------

def _tamper(out, edit):
    """Rewrite out/model.npz after ``edit(meta, arrays)``."""
    model = out / "model.npz"
    with np.load(model) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays.pop("meta")))
    edit(meta, arrays)
    np.savez(model, meta=np.array(json.dumps(meta)), **arrays)
    return model


def _negate_v(meta, arrays):
    arrays["opt.adam.v"] = -np.abs(arrays["opt.adam.v"]) - 1.0


@pytest.mark.parametrize("edit,field", [
    (lambda m, a: m["rng"]["state"].__setitem__("state", -1), "'rng'"),   # was OverflowError
    (lambda m, a: m["eval_rng"].__setitem__("state", "x"), "'eval_rng'"),
    (_negate_v, "'opt.adam.v'"),
    (lambda m, a: m["opt_steps"].__setitem__("adam", -3), "'opt_steps.adam'"),
    (lambda m, a: m.__setitem__("total_steps", -5), "'total_steps'"),
    (lambda m, a: m.__setitem__("iterations", -1), "'iterations'"),
    (lambda m, a: m["extra_state"].__setitem__("kl_beta", float("nan")), "'extra_state.kl_beta'"),
    (lambda m, a: a.__setitem__("obs_norm.var", -a["obs_norm.var"] - 1), "'obs_norm.var'"),
    (lambda m, a: a.__setitem__("obs_norm.count", -a["obs_norm.count"]), "'obs_norm.count'"),
    (lambda m, a: m.__setitem__("env_spec", "{not json"), "'env_spec'"),   # were tracebacks:
    (lambda m, a: m.__setitem__("env_spec", '{"id": "X"}'), "'env_spec'"),  # KeyError,
    (lambda m, a: m.__setitem__("config", [1]), "'config'"),              # AttributeError
    (lambda m, a: m.__setitem__("spaces", [1]), "'spaces'"),
])
def test_tampered_model_values_are_refused_at_load(edit, field, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(out, "--set", "normalize_obs=true") == 0
    model = _tamper(out, edit)
    with pytest.raises(ValueError, match=field):
        load(model)
    capsys.readouterr()
    assert main(["eval", str(out)]) == 2
    _one_line_error(capsys, str(model), field)
