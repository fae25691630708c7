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
            "--out", str(out), *extra]
    for s in sets:
        argv += ["--set", s]
    return main(argv)


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
    # past the budget: the first 10 iterations as the uninterrupted run, then the end values
    assert main(["train", "--resume", str(run), "--steps", "416", "--quiet"]) == 0
    out = capsys.readouterr().out
    col = read_csv(run / "progress.csv")[column]
    np.testing.assert_array_equal(col[:10], whole)
    end = 0.0 if column == "lr" else 0.04    # annealed to 0; DQN's exploration_final_eps
    np.testing.assert_array_equal(col[10:], [end] * 3)
    if column == "lr":
        assert "budget of 320 steps" in out and "lr" in out and "annealed to 0" in out
    else:
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
    assert _train(run, "a2c", 64) == 0
    assert main(["train", "--resume", str(run), "--steps", "128", "--quiet",
                 "--eval-every", "32", "--eval-episodes", "1"]) == 0
    cols = read_csv(run / "progress.csv")
    np.testing.assert_array_equal(cols["steps"], [32, 64, 96, 128])
    assert np.isnan(cols["eval_return_mean"][:2]).all()
    assert np.isfinite(cols["eval_return_mean"][2:]).all()
    assert main(["plot", str(run), "--out", str(tmp_path / "c.png")]) == 0
