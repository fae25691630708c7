"""Ctrl-C through the command line: every interrupt saves what was done (or, before the first
model exists, leaves nothing behind), prints one line and exits 130 -- also with process
pools (gradient-free ``backend=processes``) and in ``minirl eval``."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import minirl.logger
from minirl.algos import load
from minirl.cli import main
from minirl.logger import read_csv

REPO = Path(__file__).resolve().parents[2]
ARS = ["train", "ars", "--env", "Pendulum-v1", "--quiet", "--set", "num_directions=2",
       "--set", "top_directions=2", "--set", "eval_episodes=0"]


def _ctrl_c(cmd, until, timeout=60):
    """Run ``cmd`` in its own process group, wait until ``until()`` holds, then send SIGINT to
    the whole group as a terminal's Ctrl-C does; (exit code, stderr)."""
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not until():
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:   # a hang is the failure this file guards against
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise AssertionError("still running 60 s after Ctrl-C") from None
    return proc.returncode, err.strip()


def test_ctrl_c_with_a_process_pool_saves_and_exits_130(tmp_path):
    out = tmp_path / "run"
    live = out / ".progress.csv.live"
    code, err = _ctrl_c([sys.executable, "-m", "minirl.cli", *ARS, "--steps", "10000000",
                         "--set", "backend=processes", "--set", "num_workers=2",
                         "--out", str(out)],
                        lambda: live.is_file() and live.read_text().count("\n") >= 3)
    assert code == 130, err   # (was: 'training failed ... KeyboardInterrupt', exit 1, or a hang)
    assert err.startswith("minirl: interrupted at step ") and "\n" not in err, err
    assert load(out / "model.npz").total_steps == read_csv(out / "progress.csv")["steps"][-1]


def test_ctrl_c_during_eval_is_one_line_and_exit_130(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*ARS, "--steps", "400", "--out", str(out)]) == 0
    capsys.readouterr()
    # _SCRIPT says "up" once Python's own start-up (which no program can intercept) is over:
    # the 3 s count from there, so a loaded machine cannot land the Ctrl-C before it.
    proc = subprocess.Popen([sys.executable, "-c", _SCRIPT, "eval", str(out), "--episodes",
                             "1000000"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stderr.readline() == "up\n"
    time.sleep(3)
    os.killpg(proc.pid, signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise AssertionError("still running 60 s after Ctrl-C") from None
    assert (proc.returncode, err.strip()) == (130, "minirl: eval interrupted; nothing written")


def _ctrl_c_twice_at_first_row(monkeypatch):
    real = minirl.logger.TrainingLog.__call__

    def call(self, agent, metrics):
        real(self, agent, metrics)
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)   # the second one stops at once, unsaved

    monkeypatch.setattr(minirl.logger.TrainingLog, "__call__", call)


def test_double_ctrl_c_before_the_first_checkpoint_leaves_nothing_to_block_a_rerun(
        tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    argv = [*ARS, "--steps", "400", "--out", str(out)]
    _ctrl_c_twice_at_first_row(monkeypatch)
    assert main(argv) == 130
    err = capsys.readouterr().err.strip()
    assert "interrupted twice" in err and "no checkpoint yet" in err and "\n" not in err, err
    assert not out.exists()       # this run created it: removed with the run's files
    monkeypatch.undo()
    assert main(argv) == 0        # the same command simply runs again


def test_double_ctrl_c_after_a_checkpoint_keeps_it(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    assert main([*ARS, "--steps", "400", "--out", str(out)]) == 0
    _ctrl_c_twice_at_first_row(monkeypatch)
    assert main(["train", "--resume", str(out), "--steps", "4000", "--quiet"]) == 130
    err = capsys.readouterr().err.strip()
    assert f"the last checkpoint {out / 'model.npz'} is kept" in err, err
    assert load(out / "model.npz").total_steps == read_csv(out / "progress.csv")["steps"][-1]


def test_the_process_pool_is_shut_down_before_train_returns(tmp_path, capsys):
    import multiprocessing
    assert main([*ARS, "--steps", "400", "--set", "backend=processes", "--set",
                 "num_workers=2", "--out", str(tmp_path / "run")]) == 0
    # (left to interpreter exit, the pool's threads raced its pipes: 'Exception ignored in
    # <module 'threading'> ... OSError: [Errno 9] Bad file descriptor' about 1 run in 5)
    assert multiprocessing.active_children() == []
    assert capsys.readouterr().err == ""


def test_a_run_killed_before_its_first_model_is_named_as_such(tmp_path, capsys):
    out = tmp_path / "run"   # what SIGKILL leaves: config.json and the live CSV, no model
    out.mkdir()
    (out / "config.json").write_text("{}")
    (out / ".progress.csv.live").write_text("steps\n")
    argv = [*ARS, "--steps", "400", "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "stopped before saving any model" in err and "--force" in err, err
    assert main(["train", "--resume", str(out)]) == 2
    assert "never reached its first checkpoint" in capsys.readouterr().err
    assert main([*argv, "--force"]) == 0


#: The console script's body (``from minirl.cli import main; sys.exit(main())``) with a line
#: on stderr once Python's own start-up is over and only ``minirl.cli`` is left to load: the
#: delays below count from there, so each lands in minirl's start-up whatever the load.
_SCRIPT = ("import sys; sys.argv[0] = 'minirl'; import minirl; sys.stderr.write('up\\n'); "
           "sys.stderr.flush(); from minirl.cli import main; sys.exit(main())")


def test_ctrl_c_at_any_moment_of_the_start_up_exits_130_with_one_line(tmp_path):
    """A Ctrl-C (SIGINT to the process group) at several moments of ``minirl train``'s
    start-up -- loading minirl.cli, argparse, NumPy/gymnasium/Numba imports, env
    construction with async worker processes, the first kernel calls -- ends with exit 130
    and one line, never with death by SIGINT (exit -2: a KeyboardInterrupt raised while the
    console script imported minirl.cli, outside main) or a traceback. The runs go in
    parallel (about 4 s in all); the delays count from the end of Python's start-up."""
    delays = [0.05, 0.3, 0.6, 0.9, 1.2, 1.5, 2.0]
    procs = []
    for i, delay in enumerate(delays):
        cmd = [sys.executable, "-c", _SCRIPT, "train", "ppo", "--env", "CartPole-v1",
               "--steps", "100000", "--quiet", "--out", str(tmp_path / f"r{i}"), "--set",
               "num_envs=2", "--set", "vectorization=async", "--set", "hidden_sizes=8"]
        procs.append(subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True,
                                      start_new_session=True))
    for proc in procs:   # (readline: each child is past Python's start-up)
        assert proc.stderr.readline() == "up\n"
    t0 = time.monotonic()
    for proc, delay in sorted(zip(procs, delays), key=lambda p: p[1]):
        time.sleep(max(0.0, t0 + delay - time.monotonic()))
        os.killpg(proc.pid, signal.SIGINT)
    results = []
    for proc, delay in zip(procs, delays):
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise AssertionError(f"still running 60 s after Ctrl-C at {delay} s") from None
        results.append((delay, proc.returncode, err.strip()))
    for delay, code, err in results:
        assert code == 130 and err.startswith("minirl: ") and "interrupted" in err \
            and "\n" not in err, (delay, code, err)


def test_ctrl_c_while_minirl_cli_is_imported_exits_130(tmp_path):
    """SIGINT raised while the console script imports minirl.cli (here: deterministically,
    as minirl.cli imports dataclasses): was a KeyboardInterrupt in the script's import line
    and death by SIGINT (exit -2); now exit 130 and one line, nothing written. A library
    import of minirl.cli (not the program) gets its KeyboardInterrupt at the import."""
    hook = ("import builtins, signal, sys; real = builtins.__import__; fired = []\n"
            "def imp(name, *a, **k):\n"
            "    if name == 'dataclasses' and sys._getframe(1).f_globals.get('__name__') == "
            "'minirl.cli' and not fired:\n"
            "        fired.append(1); signal.raise_signal(signal.SIGINT)\n"
            "    return real(name, *a, **k)\n"
            "builtins.__import__ = imp\n")
    out = tmp_path / "run"
    program = hook + ("sys.argv[0] = 'minirl'\nfrom minirl.cli import main\n"
                      "sys.exit(main())\n")
    proc = subprocess.run([sys.executable, "-c", program, "train", "ppo", "--env",
                           "CartPole-v1", "--quiet", "--out", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stderr.strip()) == (
        130, "minirl: train interrupted; nothing written"), proc.stderr
    assert not out.exists()
    library = hook + ("try:\n    import minirl.cli\nexcept KeyboardInterrupt:\n"
                      "    print('interrupted at import')\n")
    proc = subprocess.run([sys.executable, "-c", library], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert (proc.returncode, proc.stdout.strip()) == (0, "interrupted at import"), proc.stderr


def test_ctrl_c_inside_a_library_constructor_still_prints_one_line():
    """An interrupt that lands inside a constructor (as in llvmlite's OutputString while
    Numba loads kernels at start-up; seen in a CI run) leaves a half-built object whose
    __del__ fails when it is collected; that used to print "Exception ignored in ..." after
    minirl's line."""
    script = (
        "import sys\n"
        "import minirl.cli as cli\n"
        "class HalfBuilt:\n"
        "    def __init__(self):\n"
        "        raise KeyboardInterrupt\n"
        "    def __del__(self):\n"
        "        self._ptr\n"
        "def presets(args):\n"
        "    HalfBuilt()\n"
        "cli._presets = presets\n"
        "sys.exit(cli.main(['presets']))\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 130
    assert proc.stderr == "minirl: presets interrupted; nothing written\n", proc.stderr


def test_main_gives_the_unraisable_hook_back_after_an_interrupt(monkeypatch):
    """In-process callers (tests, notebooks) keep their unraisable-exception reports after
    main() handled a Ctrl-C."""
    import minirl.cli as cli

    def interrupted(args):
        raise KeyboardInterrupt
    monkeypatch.setattr(cli, "_presets", interrupted)
    before = sys.unraisablehook
    assert cli.main(["presets"]) == 130
    assert sys.unraisablehook is before


def test_ctrl_c_between_the_console_scripts_import_and_main_is_exit_130():
    # (CI dry run) a Ctrl-C landing just as minirl.cli's import gave SIGINT back to Python's
    # handler raised KeyboardInterrupt at the end of the import, outside main: exit -2 and a
    # traceback. For the program, SIGINT now keeps recording until main starts.
    script = ("import os, signal, sys; sys.argv[0] = 'minirl'; from minirl.cli import main; "
              "os.kill(os.getpid(), signal.SIGINT); sys.exit(main(['presets']))")
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 130, (proc.returncode, proc.stderr)
    assert proc.stderr.strip() == "minirl: presets interrupted; nothing written"


def test_a_ctrl_c_wrapped_in_a_runtime_error_is_an_interrupt(monkeypatch, capsys):
    # (CI dry run) a Ctrl-C landing in a class body's __set_name__ while matplotlib loaded
    # reached main as RuntimeError("Error calling __set_name__ ...") caused by the
    # KeyboardInterrupt: exit 1 and a traceback instead of the interrupt line
    from minirl import cli

    def presets(args):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as e:
            raise RuntimeError("Error calling __set_name__") from e
    monkeypatch.setattr(cli, "_presets", presets)
    assert cli.main(["presets"]) == 130
    assert capsys.readouterr().err.strip() == "minirl: presets interrupted; nothing written"
