"""Tests for minirl/cli.py: a smoke run writes every artifact; bad input exits 2 cleanly."""
import json

import pytest

from minirl.cli import main


def _train(tmp_path, *extra, name="run"):
    out = tmp_path / name
    code = main(["train", "ppo", "--env", "minirl/Bandit-v0", "--steps", "512", "--quiet",
                 "--out", str(out), "--set", "num_epochs=2", "--set", "hidden_sizes=8",
                 "--set", "num_envs=8", "--set", "num_steps=32", *extra])  # 2 iterations
    return code, out


def test_train_writes_config_csv_model_and_png(tmp_path, capsys):
    code, out = _train(tmp_path, "--seed", "3")
    assert code == 0
    assert {p.name for p in out.iterdir()} == {"config.json", "progress.csv", "model.npz",
                                               "curve.png"}
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["algo"] == "ppo" and cfg["seed"] == 3 and cfg["config"]["num_epochs"] == 2
    assert cfg["config"]["hidden_sizes"] == [8]
    lines = (out / "progress.csv").read_text().splitlines()
    assert lines[0].startswith("steps,iteration,wall_time") and len(lines) == 1 + 2
    assert "approx_kl_k1" in lines[0] and "explained_variance" in lines[0]
    assert (out / "curve.png").read_bytes()[:4] == b"\x89PNG"
    assert "mean return of the last 100 episodes" in capsys.readouterr().out


def test_eval_and_plot(tmp_path, capsys):
    _, a = _train(tmp_path, name="a")
    _, b = _train(tmp_path, "--seed", "1", name="b")
    capsys.readouterr()
    assert main(["eval", str(a), "--episodes", "3"]) == 0
    assert "over 3 episodes" in capsys.readouterr().out
    png = tmp_path / "both.png"
    assert main(["plot", str(a), str(b), "--out", str(png)]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("argv,needle", [
    (["train", "nosuchalgo", "--env", "CartPole-v1"], "unknown algorithm 'nosuchalgo'"),
    (["train", "ppo", "--env", "NoSuchEnv-v9"], "'NoSuchEnv-v9'"),
    (["train", "ppo", "--env", "CartPole-v1", "--set", "gama=0.9"], "gama"),
    (["train", "ppo", "--env", "CartPole-v1", "--set", "lr=fast"], "lr=fast"),
    (["train", "ppo", "--env", "CartPole-v1", "--set", "gamma=1.5"], "gamma"),
    (["train", "ppo", "--env", "CartPole-v1", "--set", "anneal_lr=maybe"], "anneal_lr"),
    (["train", "ppo", "--env", "CartPole-v1", "--set", "lr"], "key=value"),
    (["train", "ppo", "--env", "CartPole-v1", "--steps", "0"], "--steps"),
    (["train", "ppo", "--env", "minirl/ImageObs-v0"], "image"),  # FrozenLake-v1 trains now
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(argv, needle, tmp_path, capsys):
    out = tmp_path / "never"
    assert main(argv + ["--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("minirl: error:") and needle in err and "\n" not in err
    assert not out.exists()


def test_eval_and_plot_missing_runs_exit_2(tmp_path, capsys):
    assert main(["eval", str(tmp_path)]) == 2
    assert main(["plot", str(tmp_path / "nope")]) == 2
    assert "no progress.csv" in capsys.readouterr().err


def test_eval_without_seed_is_reproducible(tmp_path, capsys):
    # `minirl eval RUN` twice printed different means (fresh envs reset from OS entropy); the
    # episodes' seeds now come from the saved evaluation generator.
    run = tmp_path / "r"
    assert main(["train", "ppo", "--env", "CartPole-v1", "--steps", "64", "--out", str(run),
                 "--quiet", "--set", "num_envs=1", "--set", "num_steps=64"]) == 0
    capsys.readouterr()
    lines = []
    for _ in range(2):
        assert main(["eval", str(run), "--episodes", "4", "--stochastic"]) == 0
        lines.append(capsys.readouterr().out)
    assert lines[0] == lines[1] and "over 4 episodes" in lines[0]


def test_closed_stdout_pipe_is_not_a_traceback():
    # `minirl presets | head -1` ended in a BrokenPipeError traceback.
    import subprocess
    import sys
    r = subprocess.run(f"'{sys.executable}' -m minirl.cli presets | head -c 10 > /dev/null",
                       shell=True, capture_output=True, text=True, timeout=120)
    assert r.stderr == ""


def test_eval_with_a_render_mode_the_env_lacks_exits_2(tmp_path, capsys):
    # gymnasium only warns about an unknown render_mode and the run would go on unrendered.
    _, run = _train(tmp_path)
    capsys.readouterr()
    assert main(["eval", str(run), "--render-mode", "bogus"]) == 2
    err = capsys.readouterr().err
    assert "render_mode 'bogus'" in err and "render modes []" in err  # Bandit renders nothing


def test_train_says_when_steps_round_up_to_whole_batches(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", "ppo", "--env", "minirl/Bandit-v0", "--steps", "300", "--quiet",
                 "--out", str(out), "--set", "num_epochs=1", "--set", "hidden_sizes=8",
                 "--set", "num_envs=8", "--set", "num_steps=32"]) == 0
    said = capsys.readouterr().out
    assert "--steps 300 is not a whole number of batches" in said and "to step 512" in said
    assert len((out / "progress.csv").read_text().splitlines()) == 1 + 2
    capsys.readouterr()
    _train(tmp_path, name="whole")  # 512 = 2 batches: nothing to say
    assert "not a whole number" not in capsys.readouterr().out


def test_eval_of_a_model_loaded_on_another_env_names_the_spaces(tmp_path):
    from minirl.algos import load

    _, run = _train(tmp_path)
    with pytest.raises(ValueError, match=r"trained with observation space Box\(shape=\(1,\)\), "
                                         r"but the env given has Box\(shape=\(4,\)\)"):
        load(run / "model.npz", env="CartPole-v1")
    with pytest.raises(ValueError, match=r"action space Discrete\(2\).*Box\(shape=\(1,\)\)"):
        load(run / "model.npz", env="minirl/ContinuousBandit-v0")
