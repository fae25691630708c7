"""``minirl train --resume RUN --steps N``: the schedules keep the run's budget as horizon.

The rule (minirl/cli.py docstring): lr/clip annealing, DQN's epsilon and PER beta span the
``--steps`` of the command that created the run (config.json ``schedule_steps``); a resume with
another ``--steps`` only moves where training stops. Checked through ``minirl.cli.main``
against the uninterrupted run's CSV column, the interruption made by a real SIGINT to this
process at a chosen step (the CLI's own handler then stops at the end of that iteration).
"""
import json
import signal

import numpy as np
import pytest

import minirl.logger
from minirl.cli import main
from minirl.logger import read_csv

AGENTS = {   # algorithm, scheduled column, --set options (32 env steps per iteration)
    "ppo": ("lr", ["num_envs=1", "num_steps=32", "minibatch_size=32", "num_epochs=1",
                   "hidden_sizes=8", "anneal_lr=true", "anneal_clip=true", "lr=0.001"]),
    "a2c": ("lr", ["num_envs=1", "num_steps=32", "hidden_sizes=8", "anneal_lr=true"]),
    "dqn": ("epsilon", ["num_envs=1", "train_freq=32", "learning_starts=100000",
                        "hidden_sizes=8", "exploration_fraction=1.0", "buffer_size=1000"]),
}


def _train(out, algo, steps, *extra):
    column, sets = AGENTS[algo]
    argv = ["train", algo, "--env", "CartPole-v1", "--steps", str(steps), "--quiet",
            "--out", str(out)]
    for s in sets:
        argv += ["--set", s]
    return main(argv + list(extra))   # (a --set in extra wins over the defaults above)


def _interrupt_at(monkeypatch, steps):
    """Make the next training send itself SIGINT once it has logged ``steps`` env steps."""
    real = minirl.logger.TrainingLog.__call__

    def call(self, agent, metrics):
        real(self, agent, metrics)
        if metrics["steps"] == steps:
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(minirl.logger.TrainingLog, "__call__", call)


@pytest.mark.parametrize("algo", sorted(AGENTS))
def test_resume_with_another_steps_keeps_every_steps_schedule_value(algo, tmp_path, capsys,
                                                                    monkeypatch):
    column = AGENTS[algo][0]
    assert _train(tmp_path / "whole", algo, 320) == 0        # 10 iterations, uninterrupted
    whole = read_csv(tmp_path / "whole" / "progress.csv")[column]
    assert len(whole) == 10 and len(set(whole.tolist())) == 10   # it does anneal

    run = tmp_path / "run"
    with monkeypatch.context() as m:
        _interrupt_at(m, 128)
        assert _train(run, algo, 320) == 130
    assert read_csv(run / "progress.csv")["steps"][-1] == 128
    # a smaller --steps: stops at 224 on the 320-step schedule (was re-spread over 224 steps,
    # so the lr of iteration 5 jumped from 1 - 4/10 to 1 - 4/7 of lr0)
    assert main(["train", "--resume", str(run), "--steps", "224", "--quiet"]) == 0
    col = read_csv(run / "progress.csv")[column]
    np.testing.assert_array_equal(col, whole[:7])
    saved = json.loads((run / "config.json").read_text())
    assert (saved["steps"], saved["schedule_steps"]) == (224, 320)
    capsys.readouterr()
    if column == "lr":
        # past the budget the lr is 0: no update could change the network, so such a
        # --steps is refused before anything is written (was: trained, then "wrote")
        before = (run / "progress.csv").read_bytes(), (run / "config.json").read_bytes()
        assert main(["train", "--resume", str(run), "--steps", "416", "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("minirl: error: --steps 416: the run's lr is annealed to 0 at "
                              "its budget of 320 steps") and "\n" not in err, err
        assert "resume with --steps 320 or less" in err
        assert ((run / "progress.csv").read_bytes(), (run / "config.json").read_bytes()) \
            == before
        assert main(["train", "--resume", str(run), "--steps", "320", "--quiet"]) == 0
        np.testing.assert_array_equal(read_csv(run / "progress.csv")[column], whole)
        assert main(["train", "--resume", str(run), "--steps", "352", "--quiet"]) == 2
        assert "resume with" not in capsys.readouterr().err   # nothing left to train
        return
    # past the budget: the first 10 iterations as the uninterrupted run, then the end values
    assert main(["train", "--resume", str(run), "--steps", "416", "--quiet"]) == 0
    out = capsys.readouterr().out
    col = read_csv(run / "progress.csv")[column]
    np.testing.assert_array_equal(col[:10], whole)
    np.testing.assert_array_equal(col[10:], [0.04] * 3)   # DQN's exploration_final_eps
    assert "budget" not in out
    assert json.loads((run / "config.json").read_text())["schedule_steps"] == 320


def test_a_run_saved_before_schedule_steps_existed_keeps_its_steps_as_budget(tmp_path, capsys,
                                                                             monkeypatch):
    run = tmp_path / "run"
    with monkeypatch.context() as m:
        _interrupt_at(m, 64)
        assert _train(run, "a2c", 160) == 130
    cfg = json.loads((run / "config.json").read_text())
    del cfg["schedule_steps"]
    (run / "config.json").write_text(json.dumps(cfg))
    assert main(["train", "--resume", str(run), "--steps", "96", "--quiet"]) == 0
    lr = read_csv(run / "progress.csv")["lr"]
    np.testing.assert_allclose(lr, 7e-4 * (1 - np.arange(3) / 5), rtol=1e-7)


def test_resume_that_starts_evaluating_keeps_progress_csv_readable(tmp_path, capsys):
    """--eval-every given only on --resume adds the evaluation columns: the old rows get
    empty cells (was: rows longer than the header, so the curve raised a traceback at the end
    and progress.csv stayed unreadable)."""
    run = tmp_path / "run"
    assert _train(run, "a2c", 64, "--set", "anneal_lr=false") == 0   # (else lr 0 past 64)
    assert main(["train", "--resume", str(run), "--steps", "128", "--quiet",
                 "--eval-every", "32", "--eval-episodes", "1"]) == 0
    cols = read_csv(run / "progress.csv")
    np.testing.assert_array_equal(cols["steps"], [32, 64, 96, 128])
    assert np.isnan(cols["eval_return_mean"][:2]).all()
    assert np.isfinite(cols["eval_return_mean"][2:]).all()
    assert main(["plot", str(run), "--out", str(tmp_path / "c.png")]) == 0


def test_resume_refuses_a_malformed_progress_csv_before_training(tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(run, "a2c", 64, "--set", "anneal_lr=false") == 0
    with open(run / "progress.csv", "a") as f:
        f.write("1,2,3,4\n")
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    assert main(["train", "--resume", str(run), "--steps", "128", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()   # (was: trained the budget, then failed drawing)
    assert err.startswith(f"minirl: error: --resume {run}: {run / 'progress.csv'}") \
        and "line 4 has 4 cells" in err and "\n" not in err, err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


@pytest.mark.parametrize("field, value, needle", [
    ("algo", "dqn", "algo is 'dqn' in config.json but 'a2c' in model.npz"),
    ("env", "Acrobot-v1", "env is 'Acrobot-v1' in config.json but 'CartPole-v1'"),
    ("seed", 3, "seed is 3 in config.json but 0"),
    ("config.lr", 0.5, "config.lr is 0.5 in config.json but 0.0007"),
    ("config.nope", 1, "config.nope is 1 in config.json but not a field in model.npz"),
])
def test_resume_refuses_a_config_json_of_another_run(field, value, needle, tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(run, "a2c", 64, "--set", "anneal_lr=false") == 0
    cfg = json.loads((run / "config.json").read_text())
    if field.startswith("config."):
        cfg["config"][field[7:]] = value
    else:
        cfg[field] = value
    (run / "config.json").write_text(json.dumps(cfg))
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--steps", "128", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()   # (was: trained PPO, logged as DQN: a mixed run)
    assert "config.json and model.npz are not the same run" in err and needle in err, err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


@pytest.mark.parametrize("row, value, line, needle", [
    (2, "inf", 3, "line 3: steps is inf, not a finite number >= 0"),
    (1, "", 2, "line 2: steps is empty, not a finite number >= 0"),
    (3, "32", 4, "line 4: steps 32 does not exceed the previous row's 64"),
    (2, "32", 3, "line 3: steps 32 does not exceed the previous row's 32"),
])
def test_resume_refuses_steps_that_are_not_finite_and_increasing(row, value, line, needle,
                                                                 tmp_path, capsys):
    """progress.csv rows count env steps: an inf/NaN ``steps`` cell or a row that does not go
    forward is refused before training, one line naming the file and the line, exit 2,
    nothing written (was: accepted; only malformed rows were refused)."""
    run = tmp_path / "run"
    assert _train(run, "a2c", 96, "--set", "anneal_lr=false") == 0
    lines = (run / "progress.csv").read_text().splitlines()
    cells = lines[row].split(",")
    cells[0] = value
    lines[row] = ",".join(cells)
    (run / "progress.csv").write_text("\n".join(lines) + "\n")
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--steps", "160", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"minirl: error: --resume {run}: {run / 'progress.csv'}") \
        and needle in err and "\n" not in err, err
    assert f"line {line}" in err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    # the Python API refuses the same file (TrainingLog(resume=True)), naming it and the line
    with pytest.raises(ValueError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        minirl.logger.TrainingLog(run / "progress.csv", resume=True)


def test_resume_refuses_a_progress_csv_past_the_model_and_bad_evaluation_steps(tmp_path,
                                                                              capsys):
    run = tmp_path / "run"
    assert _train(run, "a2c", 64, "--set", "anneal_lr=false", "--eval-every", "32",
                  "--eval-episodes", "1") == 0
    good = (run / "progress.csv").read_text()
    with open(run / "progress.csv", "a") as f:   # a row past model.npz's 64 steps
        f.write(good.splitlines()[-1].replace("64,", "96,", 1) + "\n")
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--steps", "128", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{run / 'progress.csv'} line 4: steps 96 is past model.npz's 64" in err \
        and "\n" not in err, err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    (run / "progress.csv").write_text(good)
    ev = (run / "evaluations.csv").read_text().splitlines()
    (run / "evaluations.csv").write_text("\n".join([ev[0], ev[2], ev[1]]) + "\n")  # 64, 32
    assert main(["train", "--resume", str(run), "--steps", "128", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{run / 'evaluations.csv'} is not a resumable evaluations.csv: line 3: steps 32 " \
           f"does not exceed the previous row's 64" in err and "\n" not in err, err
    (run / "evaluations.csv").write_text("\n".join([ev[0], ev[1], "64,x,1,2"]) + "\n")
    assert main(["train", "--resume", str(run), "--steps", "128", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{run / 'evaluations.csv'} is not a minirl evaluations.csv: line 3: 'x' is not a " \
           f"number" in err and "\n" not in err, err


def test_resumed_dqn_run_cuts_the_interrupted_episode_in_its_replay_buffer(tmp_path, capsys):
    # --resume resets the envs: the episode running when the first command stopped is cut in
    # the saved buffer, so no n-step window runs on into the resumed run's first episode.
    from minirl.algos.dqn import DQN

    out = tmp_path / "run"
    sets = ["n_step=3", "learning_starts=50", "train_freq=50", "gradient_steps=1",
            "batch_size=16", "hidden_sizes=8"]
    argv = ["train", "dqn", "--env", "CartPole-v1", "--steps", "300", "--quiet", "--out",
            str(out)]
    assert main(argv + [a for s in sets for a in ("--set", s)]) == 0
    assert main(["train", "--resume", str(out), "--steps", "600", "--quiet"]) == 0
    buf = DQN.load(out / "model.npz").buffer
    n = buf.steps
    ended = buf.terminated[:n] | buf.truncated[:n]
    assert n == 600                                          # the cut: slot 299
    breaks = [t for t in range(n - 1) if not np.array_equal(buf.next_obs[t], buf.obs[t + 1])]
    assert 299 in breaks and all(ended[t] for t in breaks)   # every episode break is flagged
    assert buf.truncated[299] and not buf.terminated[299]
    for start in range(n):                                   # windows stay in one episode
        b = buf._nstep(np.array([start]), 3, 0.99, np.ones(1, np.float32))
        last = start + int(b.steps[0]) - 1
        assert not any(ended[start:last])
