"""The ``minirl`` command line: train, evaluate and plot; record demonstrations.

    minirl train ALGO --env ENV_ID [--steps N] [--seed S] [--out DIR] [--set key=value ...]
                 [--force] [--checkpoint-every STEPS] [--env-kwargs key=value ...]
                 [--eval-every STEPS] [--eval-episodes K]
    minirl train --resume DIR [--steps N] [--checkpoint-every STEPS]
    minirl presets [--algo ALGO] [--env ENV_ID]
    minirl eval DIR [--episodes K] [--render-mode MODE] [--stochastic] [--seed S]
    minirl plot DIR... [--out PNG_OR_DIR]
    minirl demos --env ENV_ID --out NPZ [--expert auto|RUN_DIR|MODEL.npz] [--episodes N]
                 [--seed S] [--force]

``train`` validates everything (algorithm, env id, every ``--set`` key and value) before it
creates DIR (default ``runs/<algo>-<env>-<seed>``; when that one is not empty, the first
free ``runs/<algo>-<env>-<seed>-<k>``, k = 1, 2, ..., with one line saying so), then writes ``config.json``,
``progress.csv`` (one row per iteration), ``model.npz`` and ``curve.png`` (with
``--eval-every`` also ``evaluations.csv`` and ``best_model.npz``), each atomically
(``minirl.io``). A non-empty ``--out DIR`` is refused unless ``--force`` (which first removes
the old run's files) or ``--resume DIR``.

Interrupts and checkpoints: Ctrl-C (SIGINT) or SIGTERM stops training at the end of the
current iteration, saves model, CSV and curve, prints one line and exits 130 / 143 (a second
signal stops at once without saving: the last checkpoint is kept; a run stopped before its
first model.npz leaves nothing behind -- its config.json and progress files are removed, and
DIR if the run created it -- so the same command runs again; a DIR a killed run left without model.npz is refused with a line saying
so, and ``--force`` starts it again). Worker processes (async envs,
``backend=processes``) ignore the terminal's Ctrl-C; ``eval`` and ``plot`` interrupted print
one line and exit 130; so does a Ctrl-C anywhere in the start-up (loading minirl.cli and
its imports, building the envs and their worker processes, compiling kernels; only Python's
own start-up, before minirl.cli's first line runs, is beyond minirl's reach).
``--checkpoint-every STEPS`` saves model and CSV along the way. ``--resume DIR`` loads DIR/model.npz and continues the run's step count and CSV up to
its ``steps`` (or ``--steps``: still the run's total, not additional steps), schedules
included. The schedules (PPO/A2C lr and clip annealing, DQN's epsilon/temperature and PER
beta) span the run's *budget*: the ``--steps`` of the command that created the run, kept in
config.json as ``schedule_steps`` and never changed by a resume (``agent.schedule_offset`` is
where they stand, ``agent.schedule_horizon`` where they end). So a resumed run uses at every
step the lr/clip/epsilon/beta the uninterrupted run would have used, whatever ``--steps`` it is
given: a smaller one stops early on the original schedule, a larger one trains on past the
budget with every schedule at its final value (annealed clip at 0: a line says so; with
``anneal_lr`` the lr is 0 there, no update could change the network, and such a --steps is
refused, exit 2).
A resumed run is still not bit-identical to an
uninterrupted one: every ``learn`` call starts fresh episodes (the envs are reset with a seed
drawn from the agent's generator) — one reason why ``learn(a)`` then ``learn(b)`` differs from
``learn(a + b)``.

Exit status: 0 success; 2 bad input (one line naming the argument, file or value, nothing
written); 1 a file or runtime failure during training (one line; divergence names the
iteration and keeps the last good model); 130 / 143 interrupted by SIGINT / SIGTERM.

BLAS is pinned to one thread before NumPy loads: the networks are small, and extra threads
only add synchronization (and contention with the env) on the hot path.
"""
from __future__ import annotations

import _signal  # (the C module: loaded with the interpreter, so this line costs nothing)

# A Ctrl-C while this module loads (argparse, json, re, ...: tens of ms on a busy machine)
# would raise KeyboardInterrupt outside ``main`` -- in the console script's import line,
# where nothing catches it, and Python then ends the process by SIGINT (exit -2) instead of
# 130 and one line. So until the imports are done, SIGINT only records itself here and
# ``main`` turns it into the usual interrupt (an importer that is not the program gets its
# KeyboardInterrupt at the end of the import instead). Before this line nothing of minirl
# has run: a Ctrl-C in Python's own start-up ends the process as it would any program's.
_EARLY_SIGINT: list[int] = []


def _record_early_sigint(signum, frame):
    _EARLY_SIGINT.append(signum)


try:
    _DEFERRING = _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler
    if _DEFERRING:
        _signal.signal(_signal.SIGINT, _record_early_sigint)
except ValueError:   # imported outside the main thread: signals are not ours to handle
    _DEFERRING = False

import os  # noqa: E402

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

__all__ = ["main", "parse_overrides", "UsageError", "RunError"]


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit status 2."""


def _parse_int_tuple(text: str) -> tuple:
    """``64,64`` (also ``[64, 64]`` as config.json shows, or ``(64,64)``) -> (64, 64); an
    empty text, ``[]`` or ``()`` is the empty tuple, ``(8,)`` (Python's one-tuple, as repr
    prints it) is (8,). An empty element (``64,,64``, a trailing comma elsewhere) or a
    non-integer raises ValueError saying which element: a typo must not train a different
    network."""
    inner = text.strip()
    paren = inner[:1] + inner[-1:] == "()"
    if inner[:1] + inner[-1:] in ("[]", "()"):
        inner = inner[1:-1]
    if not inner.strip():
        return ()
    if paren and inner.count(",") == 1 and inner.rstrip().endswith(","):
        inner = inner.rstrip()[:-1]                     # (8,): one element
    parts = inner.split(",")
    for i, part in enumerate(parts, 1):
        if not part.strip():
            raise ValueError(f"element {i} of {len(parts)} is empty")
        try:
            int(part)
        except ValueError:
            raise ValueError(f"element {i} ({part.strip()!r}) is not an integer") from None
    return tuple(int(x) for x in parts)


def _parse_value(key: str, text: str, default):
    """Convert ``text`` to the type of the field's default value."""
    why = ""
    try:
        if isinstance(default, bool):
            from minirl.envs import parse_bool_word
            value = {"1": True, "0": False}.get(text.strip(), parse_bool_word(text))
            if value is None:
                raise ValueError
            return value
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
        if isinstance(default, tuple):
            return _parse_int_tuple(text)
        return text
    except ValueError as e:
        why = str(e) if isinstance(default, tuple) else ""
    kind = type(default).__name__
    form = {"bool": "true/false, yes/no, on/off or 1/0",
            "tuple": "comma-separated integers such as 64,64 (or [64,64])"}.get(kind)
    raise UsageError(f"--set {key}={text}: expected {kind} value"
                     + (f" ({form})" if form else "") + (f": {why}" if why else ""))


def parse_overrides(config_cls, pairs: list[str], base: dict | None = None):
    """A validated ``config_cls`` from ``key=value`` strings on top of ``base`` overrides."""
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    kwargs = dict(base or {})
    defaults = config_cls()
    given = {}                                      # key -> text, as the user typed it
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep:
            raise UsageError(f"--set {pair}: expected key=value")
        if key not in fields:
            raise UsageError(f"--set {key}: unknown config key for {config_cls.__name__} "
                             f"(valid: {', '.join(fields)})")
        kwargs[key] = _parse_value(key, text.strip(), getattr(defaults, key))
        given[key] = text.strip()
    try:
        return config_cls(**kwargs)
    except (ValueError, TypeError) as e:
        # the config names the field first ("hidden_sizes must be ..."): name the --set too
        first = re.match(r"\w+", str(e))
        key = first.group(0) if first else None
        if key in given:
            raise UsageError(f"--set {key}={given[key]}: {e}") from None
        raise UsageError(f"--set: {e}") from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="minirl", description="Train, evaluate and plot minirl agents.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train an agent")
    t.add_argument("algo", nargs="?", help="algorithm (see minirl.algos: ppo, a2c, reinforce, ...)")
    t.add_argument("--env", help="gymnasium environment id")
    t.add_argument("--steps", type=int, default=None,
                   help="total env steps of the run (default 100000; with --resume: as saved, "
                        "and the lr/clip/exploration schedules keep the run's first --steps "
                        "as their horizon)")
    t.add_argument("--seed", type=int, default=None, help="seed (default 0)")
    t.add_argument("--force", action="store_true",
                   help="overwrite a non-empty --out directory (its old run files are "
                        "removed; without --out: the default runs/<algo>-<env>-<seed>)")
    t.add_argument("--resume", metavar="DIR", default=None,
                   help="continue the run in DIR from its last checkpoint (same config)")
    t.add_argument("--checkpoint-every", type=int, default=None, metavar="STEPS",
                   help="also save model.npz and progress.csv every STEPS env steps")
    t.add_argument("--out", default=None,
                   help="output directory (default runs/<algo>-<env>-<seed>, or when that is "
                        "not empty the first free runs/<algo>-<env>-<seed>-<k>)")
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field (repeatable); booleans: true/false, "
                        "yes/no, on/off or 1/0; tuples: 64,64")
    t.add_argument("--demos", default=None, metavar="PATH",
                   help="bc/dagger demonstrations (.npz or Minari dataset directory); the same "
                        "as --set demos=PATH")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--env-kwargs", action="append", default=[], metavar="KEY=VALUE",
                   help="option for gymnasium.make, e.g. continuous=true (repeatable); "
                        "true/yes/on and false/no/off are booleans, none is None, numbers "
                        "are numbers, anything else a string")
    t.add_argument("--eval-every", type=int, default=None, metavar="STEPS",
                   help="evaluate deterministically on a separate env every STEPS env steps; "
                        "the best model goes to best_model.npz, the curve to evaluations.csv, "
                        "progress.csv and curve.png")
    t.add_argument("--eval-episodes", type=int, default=None,
                   help="episodes per evaluation (default 5; needs --eval-every)")
    d = sub.add_parser("demos", help="record expert demonstrations for bc/dagger (.npz)")
    d.add_argument("--env", required=True, help="gymnasium environment id")
    d.add_argument("--expert", default="auto",
                   help="'auto' (the built-in controller of CartPole-v1 or Pendulum-v1), "
                        "'cartpole', 'pendulum', or a trained agent: a run directory or its "
                        "model.npz (default auto)")
    d.add_argument("--episodes", type=int, default=10, help="episodes to record (default 10)")
    d.add_argument("--seed", type=int, default=0,
                   help="episode k is reset with seed SEED + k (default 0)")
    d.add_argument("--out", required=True, metavar="NPZ", help="file to write (.npz)")
    d.add_argument("--force", action="store_true", help="replace an existing --out file")
    pr = sub.add_parser("presets", help="list the tuned settings per (algorithm, env)")
    pr.add_argument("--algo", default=None, help="only this algorithm's rows")
    pr.add_argument("--env", default=None, help="only this environment's rows")
    e = sub.add_parser("eval", help="evaluate a trained agent")
    e.add_argument("run", help="run directory (or model.npz)")
    e.add_argument("--episodes", type=int, default=10)
    e.add_argument("--render-mode", default=None, help="e.g. human or rgb_array")
    e.add_argument("--stochastic", action="store_true", help="sample actions instead of the mode")
    e.add_argument("--seed", type=int, default=None)
    pl = sub.add_parser("plot", help="plot learning curves of one or more runs into one PNG")
    pl.add_argument("runs", nargs="+", help="run directories (or progress CSVs)")
    pl.add_argument("--out", default="curves.png", metavar="PNG_OR_DIR",
                    help="image to write (default curves.png; no suffix: .png appended); an "
                         "existing directory gets curves.png inside it; the directory must "
                         "exist")
    return p


LOCK = ".run.lock"   # held by the run training in a directory (see _claim)
RUN_FILES = ("config.json", "progress.csv", "model.npz", "curve.png", "evaluations.csv",
             "best_model.npz",
             ".progress.csv.live", ".progress.csv.state.json", LOCK)


class RunError(Exception):
    """A file or runtime failure (unreadable model, unwritable directory, divergence): printed
    as one line, exit status 1."""


class _Stop(Exception):
    """Raised by the signal handler on a second Ctrl-C/SIGTERM: stop now, save nothing."""


def _check_run_dir(out: Path, force: bool) -> None:
    """Refuse a non-empty run directory unless ``--force`` (which removes the old run's files
    first, so no old model.npz can end up beside a new config.json)."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            present = sorted(p.name for p in out.iterdir())
            names = ", ".join(present[:4])
            if LOCK in present:
                raise UsageError(f"--out {out} is in use by another minirl run ({out / LOCK} "
                                 f"exists; if no run is training there, pass --force)")
            if "model.npz" not in present and set(present) <= set(RUN_FILES):
                raise UsageError(f"--out {out} holds a run that stopped before saving any model "
                                 f"({names}: nothing to resume); pass --force to start it "
                                 f"again")
            raise UsageError(f"--out {out} is not empty ({names}); pass --force to overwrite it "
                             f"or --resume {out} to continue it")
        for name in RUN_FILES:
            (out / name).unlink(missing_ok=True)


def _is_free(path: Path) -> bool:
    """True if a run can start in ``path`` without touching anything: absent, or an empty
    directory."""
    if not path.exists():
        return True
    return path.is_dir() and not any(path.iterdir())


def _default_run_dir(algo_name: str, env_id: str, seed: int) -> Path:
    return Path(f"runs/{algo_name}-{env_id.replace('/', '_')}-{seed}")


def _claim(out: Path, empty: bool) -> bool | None:
    """Claim ``out`` for this run: create it (and its parents) if absent, then create its
    lock file exclusively (``os.O_EXCL``: atomic, so two runs started at the same moment can
    never both own one directory). With ``empty``, also give the claim back if anything
    else is in ``out`` (another run's files). Returns whether this call created ``out``, or
    None if it is not ours."""
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        if not empty or not out.exists():     # (empty: a default path that is a file: skip)
            raise UsageError(f"cannot write to {out}: {e.strerror or e}") from None
        return None
    try:
        os.close(os.open(out / LOCK, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return None
    except OSError as e:
        raise UsageError(f"cannot write to {out}: {e.strerror or e}") from None
    if empty and set(os.listdir(out)) != {LOCK}:
        (out / LOCK).unlink(missing_ok=True)
        return None
    return created


def _claim_run_dir(out: Path, explicit: bool) -> tuple[Path, Path | None, bool]:
    """(the run's directory, the taken default directory or None, whether this run created
    the directory), the directory claimed (``_claim``). An explicit ``--out`` (or the
    default with ``--force``, both already checked by ``_check_run_dir``) is used as given,
    unless another run holds it. Otherwise a default ``runs/<algo>-<env>-<seed>`` that
    holds something (or is being claimed by a run started at the same moment) is left
    alone and the run goes to the first free ``runs/<algo>-<env>-<seed>-<k>``, k = 1, 2,
    ...: running the same command twice keeps both runs, nothing is overwritten silently,
    and two runs never share a directory."""
    if explicit:
        created = _claim(out, empty=False)
        if created is None:
            raise UsageError(f"--out {out} is in use by another minirl run ({out / LOCK} "
                             f"exists; if no run is training there, pass --force)")
        return out, None, created
    k = 0
    while True:
        candidate = out if k == 0 else Path(f"{out}-{k}")
        if _is_free(candidate):
            created = _claim(candidate, empty=True)
            if created is not None:
                return candidate, (None if k == 0 else out), created
        k += 1


def _say_new_run_dir(taken: Path, out: Path) -> str:
    """The one line saying where a run goes when its default directory was taken."""
    if not taken.is_dir():
        return f"{taken} is not a directory: this run goes to {out}/"
    if (taken / "model.npz").is_file():
        old = f"the run there is kept; see minirl train --resume {taken}"
    elif not any(taken.iterdir()) or set(os.listdir(taken)) == {LOCK}:
        old = "a run started at the same moment took it"
    else:
        old = "it holds no model.npz to resume; --force would start over there"
    return f"{taken}/ is not empty: this run goes to {out}/ ({old})"


def _discard_unsaved(out: Path, created: bool) -> str:
    """After an interrupt before the run's first model.npz: remove the files this run wrote
    (config.json, progress files), and DIR itself if this run created it and it is now
    empty, so that the same command can be run again. Returns what is left, for the message.
    The rule: a run directory without model.npz holds nothing to resume or keep."""
    if (out / "model.npz").is_file():
        return f"the last checkpoint {out / 'model.npz'} is kept"
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)
    if created:
        with contextlib.suppress(OSError):
            out.rmdir()
    return f"no checkpoint yet: removed the run's files from {out}/ (run the same command again)"


def _resume_args(args):
    """(run dir, algo, env id, seed, target steps, schedule budget) of the run in
    ``args.resume``; the budget of a run saved before config.json recorded it is its
    ``steps``."""
    given = [flag for flag, v in (("ALGO", args.algo), ("--env", args.env), ("--out", args.out),
                                  ("--set", args.overrides), ("--demos", args.demos),
                                  ("--seed", args.seed),
                                  ("--force", args.force))
             if v is not None and v is not False and v != []]  # --seed 0 counts as given
    if given:
        raise UsageError(f"--resume continues a run as it was configured; drop {', '.join(given)}")
    run = Path(args.resume)
    for name in ("config.json", "model.npz", "progress.csv"):
        if not (run / name).is_file():
            raise UsageError(f"--resume {run}: no {name} there (not a run directory, or a run "
                             f"that never reached its first checkpoint)")
    from minirl.evaluation import read_evaluations
    from minirl.logger import check_steps, read_csv
    try:   # checked before training: a malformed row would otherwise surface after it
        check_steps(read_csv(run / "progress.csv")["steps"], run / "progress.csv")
        if (run / "evaluations.csv").is_file():   # (its rows are kept by the resumed run)
            check_steps(read_evaluations(run)["steps"], run / "evaluations.csv",
                        what="evaluations.csv")
    except ValueError as e:
        raise UsageError(f"--resume {run}: {e}") from None
    try:
        saved = json.loads((run / "config.json").read_text())
        budget = int(saved.get("schedule_steps", saved["steps"]))
        return (run, saved["algo"], saved["env"], int(saved["seed"]), int(saved["steps"]),
                budget)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UsageError(f"--resume {run}: unreadable config.json ({type(e).__name__}: {e})") \
            from None


_NO_FIELD = object()


def _check_same_run(out: Path, saved: dict, agent) -> None:
    """UsageError naming the first field where config.json and model.npz describe different
    runs (algorithm, env, seed, env options, a config value): resuming would train one and
    log as the other. A config key config.json lacks (an older run's file) is not compared."""
    model_config = json.loads(json.dumps(dataclasses.asdict(agent.config)))
    pairs = [("algo", saved.get("algo"), agent.name), ("env", saved.get("env"), agent.env_id),
             ("seed", saved.get("seed"), agent.seed),
             ("env_kwargs", saved.get("env_kwargs") or {}, agent.env_kwargs or {})]
    saved_config = saved.get("config")
    if not isinstance(saved_config, dict):
        raise UsageError(f"--resume {out}: config.json has no \"config\" object")
    pairs += [(f"config.{k}", v, model_config[k]) for k, v in saved_config.items()
              if k in model_config]
    pairs += [(f"config.{k}", v, _NO_FIELD) for k, v in saved_config.items()
              if k not in model_config]
    for field, in_json, in_model in pairs:
        if in_json != in_model:
            said = "not a field" if in_model is _NO_FIELD else repr(in_model)
            raise UsageError(f"--resume {out}: config.json and model.npz are not the same run: "
                             f"{field} is {in_json!r} in config.json but {said} in model.npz")


def _check_log_behind_model(out: Path, agent) -> None:
    """UsageError naming progress.csv's last line if its steps are past model.npz's: the
    resumed rows would go back in time (the two files are not the same checkpoint)."""
    from minirl.logger import read_csv
    steps = read_csv(out / "progress.csv")["steps"]   # (already checked by _resume_args)
    if steps.size and steps[-1] > agent.total_steps:
        raise UsageError(f"--resume {out}: {out / 'progress.csv'} line {steps.size + 1}: steps "
                         f"{steps[-1]:g} is past model.npz's {agent.total_steps} (not the same "
                         f"checkpoint)")


def _train(args) -> int:
    from minirl.algos import ALGOS, PRESETS, load
    from minirl.envs import check_env_id
    from minirl.population import hold_sigint

    # Validate everything before anything is written.
    if args.checkpoint_every is not None and args.checkpoint_every < 1:
        raise UsageError(f"--checkpoint-every must be a positive number of steps, got "
                         f"{args.checkpoint_every}")
    if args.resume:
        out, algo_name, env_id, seed, target, budget = _resume_args(args)
        target = args.steps if args.steps is not None else target
        saved = json.loads((out / "config.json").read_text())
        if args.eval_every is None and saved.get("eval_every"):  # keep evaluating as before
            args.eval_every = int(saved["eval_every"])
            # (an --eval-episodes given now wins over the saved count, as --eval-every does)
            args.eval_episodes = args.eval_episodes or int(saved.get("eval_episodes") or 5)
    else:
        if not args.algo or not args.env:
            raise UsageError("train needs ALGO and --env (or --resume DIR)")
        algo_name, env_id = args.algo, args.env
        target = 100_000 if args.steps is None else args.steps
        budget = target   # the schedules' horizon, kept by every --resume
        seed = 0 if args.seed is None else args.seed
        if seed < 0:
            raise UsageError(f"--seed must be a non-negative integer, got {seed}")
    if algo_name not in ALGOS:
        raise UsageError(f"unknown algorithm {algo_name!r} (choose from {', '.join(sorted(ALGOS))})")
    try:
        check_env_id(env_id)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if target < 1:
        raise UsageError(f"--steps must be positive, got {target}")
    for flag, v in (("--eval-every", args.eval_every), ("--eval-episodes", args.eval_episodes)):
        if v is not None and v < 1:
            raise UsageError(f"{flag} must be a positive integer, got {v}")
    if args.eval_episodes is not None and args.eval_every is None:
        raise UsageError("--eval-episodes needs --eval-every STEPS (evaluations happen only "
                         "with it)")
    if args.eval_every is not None and args.eval_episodes is None:
        args.eval_episodes = 5
    from minirl.envs import parse_env_kwargs
    try:
        env_kwargs = parse_env_kwargs(args.env_kwargs)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.resume and env_kwargs:
        raise UsageError("--resume continues a run as it was configured; drop --env-kwargs")
    algo = ALGOS[algo_name]
    if args.resume:
        try:
            with hold_sigint():
                agent = load(out / "model.npz")
            agent.check_training_inputs()   # e.g. BC's demos file: still there and fitting
        except (TypeError, ValueError) as e:
            raise UsageError(f"--resume {out}: {e}") from None
        _check_same_run(out, saved, agent)
        _check_log_behind_model(out, agent)
        if agent.total_steps >= target:
            raise UsageError(f"--resume {out}: already trained {agent.total_steps} of "
                             f"{target} steps; pass a larger --steps to train on")
        config = agent.config
        args.created_dir = False
    else:
        if args.demos is not None:
            if "demos" not in {f.name for f in dataclasses.fields(algo.Config)}:
                users = sorted(n for n, a in ALGOS.items()
                               if "demos" in {f.name for f in dataclasses.fields(a.Config)})
                raise UsageError(f"--demos is only for {'/'.join(users)} (imitation learning); "
                                 f"{algo_name} learns from its env's rewards")
            args.overrides = [*args.overrides, f"demos={args.demos}"]
        config = parse_overrides(algo.Config, args.overrides, PRESETS.get((algo_name, env_id)))
        explicit = bool(args.out or args.force)
        out = Path(args.out) if args.out else _default_run_dir(algo_name, env_id, seed)
        if explicit:
            _check_run_dir(out, args.force)
        try:  # may still reject the env's spaces (or an option gymnasium.make refuses)
            with hold_sigint():
                agent = algo(env_id, config, seed=seed, env_kwargs=env_kwargs)
        except (TypeError, ValueError) as e:
            raise UsageError(f"{algo_name} on {env_id}: {e}") from None
        from minirl.presets import describe
        print(describe(algo_name, env_id))   # whether a preset applies, and its source
        out, taken, args.created_dir = _claim_run_dir(out, explicit)   # ours from here on
        if taken is not None:
            print(_say_new_run_dir(taken, out))
    if target > budget:
        _refuse_past_annealed_lr(agent, target, budget)
    args.said_rounding = _say_rounding(agent, target)
    agent.schedule_horizon = budget   # (a fresh run: the same as learn(target)'s own)
    if target > budget:
        _say_past_budget(agent, budget)

    try:
        log = _start_files(agent, out, algo, algo_name, env_id, seed, target, budget, config,
                           args)
        return _run(agent, log, out, algo_name, env_id, seed, target, args)
    except KeyboardInterrupt:   # while the run's own handler was not in place
        _close_workers(agent)   # (a process pool: shut down now, not at interpreter exit)
        print(f"minirl: interrupted; {_discard_unsaved(out, args.created_dir)}",
              file=sys.stderr)
        return 130
    finally:
        if not args.resume:       # the directory is free for --resume, eval and plot
            (out / LOCK).unlink(missing_ok=True)


def _start_files(agent, out, algo, algo_name, env_id, seed, target, budget, config, args):
    """Write config.json and open progress.csv's log (UsageError if DIR is not writable)."""
    from minirl.io import atomic_write_text
    from minirl.logger import TrainingLog

    try:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "config.json", json.dumps(
            {"algo": algo_name, "env": env_id, "seed": seed, "steps": target,
             "schedule_steps": budget,
             "env_kwargs": agent.env_kwargs, "eval_every": args.eval_every,
             "eval_episodes": args.eval_episodes if args.eval_every else None,
             "config": dataclasses.asdict(config)},
            indent=2) + "\n")
        from minirl.evaluation import EVAL_FIELDS
        fields = (*algo.log_fields, *(EVAL_FIELDS if args.eval_every else ()))
        log = TrainingLog(out / "progress.csv", fields=fields, resume=bool(args.resume))
    except OSError as e:
        raise UsageError(f"cannot write to {out}: {e.strerror or e}") from None
    except ValueError as e:
        raise UsageError(f"--resume {out}: {e}") from None
    return log


class _NumpyWarnings:
    """Inside: RuntimeWarnings (NumPy's overflow / invalid-value reports, each with a source
    line) are counted instead of printed, so that a diverging run's stderr is its one error
    line; ``report()`` prints one note line for a run that finished in spite of them. Other
    warnings print as usual."""

    def __init__(self):
        self.count, self.first = 0, None

    def __enter__(self):
        import warnings
        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if not issubclass(category, RuntimeWarning):
                return shown(message, category, filename, lineno, file, line)
            self.count += 1
            if self.first is None:
                self.first = f"{message} ({Path(filename).name}:{lineno})"

        warnings.showwarning = show
        return self

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)

    def report(self) -> None:
        if self.count:
            print(f"minirl: note: NumPy reported {self.count} floating-point warning(s) during "
                  f"training, the first: {self.first}; the saved parameters are finite",
                  file=sys.stderr)


def _say_rounding(agent, target: int) -> bool:
    """One line when an on-policy agent will train past ``target``: it collects whole batches
    of num_envs x num_steps env steps, so --steps is rounded up to the next multiple. True if
    it said so (other agents are reported after training: :func:`_say_overshoot`)."""
    from minirl.algos.base import OnPolicyAgent

    if not isinstance(agent, OnPolicyAgent):
        return False
    batch = agent.config.num_envs * agent.config.num_steps
    todo = target - agent.total_steps
    if todo % batch:
        end = agent.total_steps + -(-todo // batch) * batch
        print(f"minirl: --steps {target} is not a whole number of batches of num_envs x "
              f"num_steps = {agent.config.num_envs} x {agent.config.num_steps} = {batch} "
              f"steps; training runs to step {end}")
        return True
    return False


def _refuse_past_annealed_lr(agent, target: int, budget: int) -> None:
    """UsageError when a resumed run would train iterations whose lr is annealed to exactly 0
    (``anneal_lr``: past the run's budget, rounded up to whole batches): every such update
    leaves the network's parameters unchanged, so those steps would only look like training."""
    from minirl.algos.base import OnPolicyAgent

    if not (isinstance(agent, OnPolicyAgent) and getattr(agent.config, "anneal_lr", False)):
        return
    batch = agent.config.num_envs * agent.config.num_steps
    end = -(-budget // batch) * batch   # the first iteration starting here has lr 0
    if target > end:
        can = (f"resume with --steps {end} or less, or" if agent.total_steps < end else "")
        raise UsageError(f"--steps {target}: the run's lr is annealed to 0 at its budget of "
                         f"{budget} steps (anneal_lr over its first --steps), so training past "
                         f"step {end} cannot change the network's parameters; {can} start a "
                         f"new run with a larger --steps".replace(";  ", "; "))


def _say_past_budget(agent, budget: int) -> None:
    """One line when a resumed run trains past its schedule budget with the clip range
    annealed (it stays at 0 there; lr annealed to 0 is refused before: nothing could change).
    DQN's exploration and PER beta also stay at their final values, which is what they
    reach by the budget anyway: nothing to say."""
    if getattr(agent.config, "anneal_clip", False):
        print(f"minirl: the run's schedules end at its budget of {budget} steps (its first "
              f"--steps): from there on clip_eps stays annealed to 0, so PPO's ratio is "
              f"clipped at 1; to anneal over more steps, start a new run with a larger --steps")


def _close_workers(agent) -> None:
    """Shut the agent's worker pool down now (gradient-free ``backend=processes``/``ray``),
    not in interpreter-exit hooks that race the pool's own threads and pipes."""
    close = getattr(agent, "close", None)
    if callable(close):
        close()


def _say_overshoot(agent, target: int, last_iteration: int) -> None:
    """One line after training when the agent went past ``target`` steps (it stops only at
    the end of an iteration, and its last iteration ran ``last_iteration`` steps)."""
    if agent.total_steps > target:
        print(f"minirl: trained {agent.total_steps} steps, {agent.total_steps - target} more "
              f"than --steps {target}: {agent.name} trains in whole iterations (the last one "
              f"ran {last_iteration} steps)")


def _run(agent, log, out: Path, algo_name: str, env_id: str, seed: int, target: int, args) -> int:
    """Train to ``target`` steps with checkpoints; save on success, interrupt or divergence."""
    import signal

    from tqdm import tqdm

    from minirl.plot import plot_runs

    def checkpoint() -> None:
        agent.save(out / "model.npz")
        log.checkpoint()

    caught: list[int] = []

    def on_signal(signum, frame):
        caught.append(signum)
        if len(caught) > 1:  # a second Ctrl-C: stop at once, without saving
            raise _Stop()

    every = args.checkpoint_every
    next_ckpt = [agent.total_steps + every if every else None]
    start_steps = agent.total_steps
    bar = tqdm(total=target, initial=start_steps, unit="step", unit_scale=True,
               disable=args.quiet, desc=f"{algo_name} {env_id}", dynamic_ncols=True)

    from minirl.evaluation import Evaluator
    from minirl.population import WorkerError
    evaluator = (Evaluator(args.eval_every, args.eval_episodes, out)
                 if args.eval_every else None)
    if evaluator is not None and args.resume:  # keep the run's evaluations and best score
        evaluator.resume(agent.total_steps)

    last = [0, agent.total_steps]  # steps of the last iteration, steps after it

    def callback(agent, metrics):
        if evaluator is not None:   # first, so that progress.csv gets the evaluation columns
            evaluator(agent, metrics)
        log(agent, metrics)
        last[0], last[1] = metrics["steps"] - last[1], metrics["steps"]
        bar.update(min(metrics["steps"], target) - bar.n)
        ret100 = log.recent_mean   # (NaN until the first episode ends: shown as "-")
        bar.set_postfix(ret100="-" if math.isnan(ret100) else f"{ret100:.1f}", refresh=False)
        if next_ckpt[0] is not None and metrics["steps"] >= next_ckpt[0]:
            checkpoint()
            next_ckpt[0] = metrics["steps"] + every
        return not caught  # a signal stops training at the end of this iteration

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    start = time.perf_counter()
    failure = None
    numpy_warnings = _NumpyWarnings()
    try:
        if args.resume:  # the schedules (lr/clip annealing, exploration) continue, not restart
            agent.schedule_offset = agent.total_steps
        with numpy_warnings:
            agent.learn(target - start_steps, callback=callback)
    except _Stop:
        bar.close()
        _close_workers(agent)
        print(f"minirl: interrupted twice at step {agent.total_steps}; not saved: "
              f"{_discard_unsaved(out, args.created_dir)}", file=sys.stderr)
        return 128 + caught[0]
    except (ArithmeticError, ValueError) as e:  # divergence (NaN/inf), or another failure
        failure = e
    except WorkerError as e:  # a population worker's error (gradient-free agents)
        failure = _missing_dependency(e) or e
    except _DependencyNotInstalled() as e:  # e.g. pygame for render_mode=human
        failure = e
    except TypeError as e:  # e.g. an --env-kwargs value of a type the env cannot use
        failure = e
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        bar.close()
        _close_workers(agent)
    wall = time.perf_counter() - start
    if isinstance(failure, _DependencyNotInstalled()):  # bad input, not a training failure
        kept = _discard_unsaved(out, args.created_dir)
        raise UsageError(f"{_render_option(agent)}: {failure} ({kept})")
    try:
        if failure is not None:
            return _diverged(agent, log, out, failure, checkpoint)
        checkpoint()
        log.close(keep_state=bool(caught))  # an interrupted run keeps what --resume needs
        # (with --eval-every the evaluation curve too; rows without a finite value skipped)
        curve = plot_runs([out], out / "curve.png", title=f"{algo_name} on {env_id}")
    except OSError as e:
        raise RunError(f"cannot write to {out}: {e.strerror or e}") from None
    except ValueError as e:   # (model and CSV are saved by now: only the curve is missing)
        raise RunError(f"saved {out / 'model.npz'} and {out / 'progress.csv'}, but cannot draw "
                       f"{out / 'curve.png'}: {e}") from None
    numpy_warnings.report()   # (after a failure the error line says what went wrong)
    if caught:
        print(f"minirl: interrupted at step {agent.total_steps}; saved {out / 'model.npz'}, "
              f"{out / 'progress.csv'} and {curve} (continue with: minirl train --resume {out})",
              file=sys.stderr)
        return 128 + caught[0]
    score = ("no episode finished" if math.isnan(log.recent_mean) else
             f"mean return of the last 100 episodes {log.recent_mean:.1f}")
    if not getattr(args, "said_rounding", False):
        _say_overshoot(agent, target, last[0])
    done = agent.total_steps - start_steps
    print(f"{algo_name} {env_id} seed {seed}: {done} steps in {wall:.1f} s "
          f"({done / max(wall, 1e-9):.0f} steps/s), {score}; wrote {out}/")
    return 0


#: What a ValueError says when a network output or a loss went non-finite ("logits contains
#: NaN or inf", "targets contains NaN or inf", "... must be finite").
_NON_FINITE_WORDS = re.compile(r"\bnan\b|\binf\b|infinite|non-?finite|not finite|must be finite|"
                               r"overflow", re.IGNORECASE)


def _is_divergence(error: Exception, finite_state: bool) -> bool:
    """Whether a training failure is a genuine divergence: a non-finite gradient or loss
    (``NonFiniteGradientError`` and every other ArithmeticError), non-finite parameters or
    optimizer state, or a ValueError about a NaN/inf network output. Anything else (e.g. a
    ValueError from a setting that only fails once training runs) is reported as a failure
    with its type, not as "diverged"."""
    from minirl.nn.mlp import ValueRangeError   # (loaded by then: training ran)

    if isinstance(error, (TypeError, ValueRangeError)):   # bad input, not a divergence
        return False
    if not finite_state:
        return True
    for e in (error, error.__cause__):   # (a WorkerError carries the worker's own error)
        if e is not None and (isinstance(e, ArithmeticError)
                              or isinstance(e, ValueError) and _NON_FINITE_WORDS.search(str(e))):
            return True
    return False


def _diverged(agent, log, out: Path, error: Exception, checkpoint) -> int:
    """Keep the last good model: the current one if every saved array is finite (the failing
    update was refused before it touched the parameters), else the last checkpoint; then
    raise RunError saying "diverged" (only for :func:`_is_divergence`) or "failed"."""
    import numpy as np

    iteration = agent.iterations + 1
    arrays = agent.state_arrays()
    finite = all(np.all(np.isfinite(a)) for k, a in arrays.items()
                 if np.asarray(a).dtype.kind == "f" and not k.startswith("buffer."))
    if finite:
        checkpoint()
        kept = f"saved the model after iteration {agent.iterations} to {out / 'model.npz'}"
    elif (out / "model.npz").is_file():
        log.checkpoint()
        kept = f"kept the last checkpoint {out / 'model.npz'}"
    else:
        kept = "no finite model to save"
    log.close(keep_state=True)
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    if isinstance(error, TypeError):  # not a divergence: say what failed, and the likely cause
        hint = " (check --env-kwargs)" if getattr(agent, "env_kwargs", None) else ""
        raise RunError(f"training failed in iteration {iteration} (after step "
                       f"{agent.total_steps}): TypeError: {reason}{hint}; {kept}")
    if not _is_divergence(error, finite):
        raise RunError(f"training failed in iteration {iteration} (after step "
                       f"{agent.total_steps}): {type(error).__name__}: {reason}; {kept}")
    raise RunError(f"training diverged in iteration {iteration} (after step {agent.total_steps}):"
                   f" {reason}; {kept}")


def _DependencyNotInstalled() -> type:
    """gymnasium's error for a missing optional package (pygame for rendering, box2d, mujoco)."""
    from gymnasium.error import DependencyNotInstalled
    return DependencyNotInstalled


def _missing_dependency(error: BaseException):
    """The ``DependencyNotInstalled`` in ``error`` or its cause chain (a worker's), or None."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, _DependencyNotInstalled()):
            return error
        seen.add(id(error))
        error = error.__cause__
    return None


def _render_option(agent) -> str:
    """The option that made the envs render: ``--env-kwargs render_mode=MODE`` (or the env
    options of the run, with --resume), or just the env when no render mode was asked for
    (a missing package the env needs only once it runs)."""
    mode = (getattr(agent, "env_kwargs", None) or {}).get("render_mode")
    if mode is not None:
        return f"--env-kwargs render_mode={mode}"
    return f"--env {agent.env_id}"


def _eval(args) -> int:
    from minirl.algos import load

    path = Path(args.run)
    model = path / "model.npz" if path.is_dir() else path
    if not model.is_file():
        raise UsageError(f"no model.npz in {path}")
    if args.episodes < 1:
        raise UsageError(f"--episodes must be positive, got {args.episodes}")
    if args.seed is not None and args.seed < 0:
        raise UsageError(f"--seed must be a non-negative integer, got {args.seed}")
    try:
        agent = load(model, training=False)  # in-process envs: no vector-env workers started
    except (TypeError, ValueError) as e:
        raise UsageError(str(e) if str(model) in str(e) else f"{model}: {e}") from None
    try:
        returns = agent.evaluate(args.episodes, deterministic=not args.stochastic,
                                 render_mode=args.render_mode, seed=args.seed)
    except (TypeError, ValueError) as e:
        raise UsageError(f"eval {model}: {e}") from None
    except _DependencyNotInstalled() as e:  # e.g. pygame for --render-mode human
        option = (f"--render-mode {args.render_mode}" if args.render_mode is not None
                  else _render_option(agent))
        raise UsageError(f"{option}: {e}") from None
    print(f"{agent.name} {agent.env_id}: mean return {returns.mean():.2f} +- {returns.std():.2f} "
          f"over {args.episodes} episodes")
    return 0


def _demos(args) -> int:
    """Record ``--episodes`` episodes of an expert (``minirl.imitation.collect_demonstrations``)
    into an .npz that ``minirl train bc/dagger --demos`` reads; one summary line."""
    import tempfile

    import numpy as np

    from minirl.envs import check_env_id
    from minirl.imitation import collect_demonstrations
    from minirl.imitation.experts import EXPERTS

    try:
        check_env_id(args.env)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.episodes < 1:
        raise UsageError(f"--episodes must be a positive integer, got {args.episodes}")
    if args.seed < 0:
        raise UsageError(f"--seed must be a non-negative integer, got {args.seed}")
    out = Path(args.out)
    if out.suffix != ".npz":
        raise UsageError(f"--out {args.out!r}: expected a .npz file name, e.g. demos.npz")
    if out.exists() and not args.force:
        raise UsageError(f"--out {args.out} exists; pass --force to replace it")
    if not out.parent.is_dir():
        raise UsageError(f"--out {args.out}: directory {out.parent} does not exist")
    if out.is_dir():
        raise UsageError(f"--out {args.out} is a directory")
    try:   # writable? (before recording anything: a long recording must not be lost)
        with tempfile.NamedTemporaryFile(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"):
            pass
    except OSError as e:
        raise UsageError(f"--out {args.out}: cannot write in {out.parent}: "
                         f"{e.strerror or e}") from None
    expert = args.expert
    if expert != "auto" and expert not in EXPERTS and Path(expert).is_dir():
        expert = str(Path(expert) / "model.npz")    # a run directory: its saved agent
    try:
        demos = collect_demonstrations(expert, args.env, args.episodes, args.seed)
    except (ValueError, TypeError) as e:
        raise UsageError(str(e)) from None
    try:
        demos.save_npz(out)
    except OSError as e:
        raise RunError(f"cannot write {out}: {e}") from None
    returns = [float(r.sum()) for r in np.split(demos.rewards,
                                                np.cumsum(demos.episode_lengths)[:-1])]
    print(f"recorded {demos.n_episodes} episodes, {int(demos.episode_lengths.sum())} steps, "
          f"mean return {np.mean(returns):.1f} (expert {args.expert}, {args.env}, seeds "
          f"{args.seed}..{args.seed + args.episodes - 1}) -> {out}")
    return 0


def _presets(args) -> int:
    """Print the tuned rows (algorithm, env, overrides, source), optionally filtered."""
    from minirl.presets import TABLE

    rows = [p for p in TABLE if (args.algo in (None, p.algo)) and (args.env in (None, p.env))]
    if not rows:
        raise UsageError(f"no preset for algo={args.algo!r}, env={args.env!r}")
    for p in rows:
        sets = " ".join(f"{k}={v}" for k, v in p.overrides.items())
        print(f"{p.algo:<6} {p.env:<26} {sets}")
        print(f"{'':<6} {'':<26} source: {p.source}" + (f"; note: {p.note}" if p.note else ""))
    return 0


def _plot(args) -> int:
    """Training curves (and evaluation curves where a run has them) of every run in one PNG;
    a run with nothing finite to draw is named on stderr and on the figure, not left blank."""
    from minirl.plot import draw_runs, figure_path, finish_figure, progress_csv

    out = Path(args.out)
    if not (args.out and out.is_dir()) and (not out.name or args.out.endswith(("/", os.sep))):
        raise UsageError(f"--out {args.out!r}: expected the path of a PNG file, e.g. curves.png")
    try:   # an existing directory: DIR/curves.png (not DIR.png beside it)
        figure_path(out)
    except FileNotFoundError as e:
        raise UsageError(f"--out {e}") from None
    for run in args.runs:
        try:
            progress_csv(run)
        except FileNotFoundError as e:
            raise UsageError(str(e)) from None
    try:
        fig, ax, notes = draw_runs(args.runs)
        written = finish_figure(fig, ax, args.out)
    except ValueError as e:
        raise UsageError(str(e)) from None
    except OSError as e:
        raise UsageError(f"cannot write --out {args.out}: {e.strerror or e}") from None
    for note in notes:
        print(f"minirl: note: {note}", file=sys.stderr)
    print(f"wrote {written}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args, hook = None, sys.unraisablehook
    try:
        _restore_sigint()   # (the program's own import left SIGINT recording, see below)
        if _EARLY_SIGINT:   # a Ctrl-C while minirl.cli loaded (see the top of this file)
            _EARLY_SIGINT.clear()
            raise KeyboardInterrupt
        args = _parser().parse_args(argv)
        try:
            return {"train": _train, "eval": _eval, "plot": _plot, "demos": _demos,
                    "presets": _presets}[args.command](args)
        except RuntimeError as e:   # a Ctrl-C inside a class body's __set_name__ (e.g. while
            if _interrupted(e):     # matplotlib loads) comes wrapped in a RuntimeError
                raise KeyboardInterrupt from None
            raise
    except UsageError as e:
        print(f"minirl: error: {e}", file=sys.stderr)
        return 2
    except RunError as e:
        print(f"minirl: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:   # (training handles its own: this is eval, plot, start-up)
        # A Ctrl-C inside a library's constructor (Numba/llvmlite loading kernels at start-up)
        # can leave a half-built object whose __del__ then fails as it is collected, printing
        # "Exception ignored in ..." after our line: noise about an object we are abandoning.
        sys.unraisablehook = lambda unraisable: None
        command = args.command if args is not None else _command_word(argv)
        print(f"minirl: {command} interrupted; nothing written", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `minirl presets | head`: the reader left, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # (no error at exit)
        return 1
    finally:   # (the abandoned objects are collected once the except clause is left)
        sys.unraisablehook = hook


def _interrupted(e: BaseException) -> bool:
    """Whether ``e`` was caused by a KeyboardInterrupt (its cause/context chain holds one)."""
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt):
            return True
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return False


def _command_word(argv) -> str:
    """The subcommand's name for the interrupt line before argparse has run."""
    words = sys.argv[1:] if argv is None else list(argv)
    return next((w for w in words if w in ("train", "eval", "plot", "demos", "presets")),
                "minirl")


def _restore_sigint() -> None:
    """Python's own SIGINT handler back in place of ``_record_early_sigint`` (if it is still
    there). ``main`` does this inside its ``try``: a Ctrl-C landing just as the handler
    changes is then a KeyboardInterrupt that ``main`` turns into exit 130, never one raised
    at the end of the console script's import, where nothing catches it (exit -2)."""
    try:
        if _signal.getsignal(_signal.SIGINT) is _record_early_sigint:
            _signal.signal(_signal.SIGINT, _signal.default_int_handler)
    except ValueError:   # main called outside the main thread: not ours to change
        pass


def _end_deferral() -> None:
    """The end of the import. When this is the program (the ``minirl`` console script or
    ``python -m minirl.cli``), SIGINT keeps recording until ``main`` starts, which gives it
    back to Python's handler and turns a recorded Ctrl-C into the usual interrupt. Any other
    importer gets Python's handler back here, and a Ctrl-C recorded meanwhile interrupts it."""
    if not _DEFERRING:
        return
    program = os.path.basename(sys.argv[0] if sys.argv else "").removesuffix(".exe")
    if __name__ == "__main__" or program in ("minirl", "minirl-script.py"):
        return
    _restore_sigint()
    if _EARLY_SIGINT:
        _EARLY_SIGINT.clear()
        raise KeyboardInterrupt


_end_deferral()

if __name__ == "__main__":
    sys.exit(main())
