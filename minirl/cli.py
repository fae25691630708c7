"""The ``minirl`` command line: train, evaluate and plot.

    minirl train ALGO --env ENV_ID [--steps N] [--seed S] [--out DIR] [--set key=value ...]
    minirl eval DIR [--episodes K] [--render-mode MODE] [--stochastic] [--seed S]
    minirl plot DIR... [--out PNG]

``train`` validates everything (algorithm, env id, every ``--set`` key and value) before it
creates DIR (default ``runs/<algo>-<env>-<seed>``), then writes ``config.json``,
``progress.csv`` (one row per iteration), ``model.npz`` and ``curve.png``. Errors in the input
print one line naming the culprit and exit with status 2.

BLAS is pinned to one thread before NumPy loads: the networks are small, and extra threads
only add synchronization (and contention with the env) on the hot path.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

__all__ = ["main", "parse_overrides", "UsageError"]


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit status 2."""


def _parse_value(key: str, text: str, default):
    """Convert ``text`` to the type of the field's default value."""
    try:
        if isinstance(default, bool):
            low = text.lower()
            if low not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return low in ("true", "1", "yes")
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
        if isinstance(default, tuple):
            return tuple(int(x) for x in text.split(",") if x.strip())
        return text
    except ValueError:
        kind = type(default).__name__
        raise UsageError(f"--set {key}={text}: expected {kind} value") from None


def parse_overrides(config_cls, pairs: list[str], base: dict | None = None):
    """A validated ``config_cls`` from ``key=value`` strings on top of ``base`` overrides."""
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    kwargs = dict(base or {})
    defaults = config_cls()
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep:
            raise UsageError(f"--set {pair}: expected key=value")
        if key not in fields:
            raise UsageError(f"--set {key}: unknown config key for {config_cls.__name__} "
                             f"(valid: {', '.join(fields)})")
        kwargs[key] = _parse_value(key, text.strip(), getattr(defaults, key))
    try:
        return config_cls(**kwargs)
    except (ValueError, TypeError) as e:
        raise UsageError(f"--set: {e}") from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="minirl", description="Train, evaluate and plot minirl agents.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train an agent")
    t.add_argument("algo", help="algorithm (see minirl.algos: ppo, a2c, reinforce, ...)")
    t.add_argument("--env", required=True, help="gymnasium environment id")
    t.add_argument("--steps", type=int, default=100_000, help="env steps (default 100000)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", default=None, help="output directory (default runs/<algo>-<env>-<seed>)")
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field (repeatable)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    e = sub.add_parser("eval", help="evaluate a trained agent")
    e.add_argument("run", help="run directory (or model.npz)")
    e.add_argument("--episodes", type=int, default=10)
    e.add_argument("--render-mode", default=None, help="e.g. human or rgb_array")
    e.add_argument("--stochastic", action="store_true", help="sample actions instead of the mode")
    e.add_argument("--seed", type=int, default=None)
    pl = sub.add_parser("plot", help="plot learning curves of one or more runs into one PNG")
    pl.add_argument("runs", nargs="+", help="run directories (or progress CSVs)")
    pl.add_argument("--out", default="curves.png")
    return p


def _train(args) -> int:
    from minirl.algos import ALGOS, PRESETS
    from minirl.envs import check_env_id

    # Validate everything before anything is written.
    if args.algo not in ALGOS:
        raise UsageError(f"unknown algorithm {args.algo!r} (choose from {', '.join(sorted(ALGOS))})")
    try:
        check_env_id(args.env)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.steps < 1:
        raise UsageError(f"--steps must be positive, got {args.steps}")
    algo = ALGOS[args.algo]
    config = parse_overrides(algo.Config, args.overrides, PRESETS.get((args.algo, args.env)))
    out = Path(args.out or f"runs/{args.algo}-{args.env.replace('/', '_')}-{args.seed}")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")
    try:
        agent = algo(args.env, config, seed=args.seed)  # may still reject the env's spaces
    except (TypeError, ValueError) as e:
        raise UsageError(f"{args.algo} on {args.env}: {e}") from None

    from tqdm import tqdm

    from minirl.logger import TrainingLog
    from minirl.plot import plot_runs

    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(
        {"algo": args.algo, "env": args.env, "seed": args.seed, "steps": args.steps,
         "config": dataclasses.asdict(config)}, indent=2) + "\n")
    log = TrainingLog(out / "progress.csv", fields=algo.log_fields)
    bar = tqdm(total=args.steps, unit="step", unit_scale=True, disable=args.quiet,
               desc=f"{args.algo} {args.env}", dynamic_ncols=True)

    def callback(agent, metrics):
        log(agent, metrics)
        bar.update(min(metrics["steps"], args.steps) - bar.n)
        bar.set_postfix(ret100=f"{log.recent_mean:.1f}", refresh=False)

    start = time.perf_counter()
    try:
        agent.learn(args.steps, callback=callback)
    finally:
        bar.close()
        log.close()
    wall = time.perf_counter() - start
    agent.save(out / "model.npz")
    plot_runs([out], out / "curve.png", title=f"{args.algo} on {args.env}")
    print(f"{args.algo} {args.env} seed {args.seed}: {agent.total_steps} steps in {wall:.1f} s "
          f"({agent.total_steps / wall:.0f} steps/s), mean return of the last 100 episodes "
          f"{log.recent_mean:.1f}; wrote {out}/")
    return 0


def _eval(args) -> int:
    from minirl.algos import load

    path = Path(args.run)
    model = path / "model.npz" if path.is_dir() else path
    if not model.is_file():
        raise UsageError(f"no model.npz in {path}")
    if args.episodes < 1:
        raise UsageError(f"--episodes must be positive, got {args.episodes}")
    agent = load(model)
    returns = agent.evaluate(args.episodes, deterministic=not args.stochastic,
                             render_mode=args.render_mode, seed=args.seed)
    print(f"{agent.name} {agent.env_id}: mean return {returns.mean():.2f} +- {returns.std():.2f} "
          f"over {args.episodes} episodes")
    return 0


def _plot(args) -> int:
    from minirl.plot import plot_runs, progress_csv

    for run in args.runs:
        try:
            progress_csv(run)
        except FileNotFoundError as e:
            raise UsageError(str(e)) from None
    print(f"wrote {plot_runs(args.runs, args.out)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return {"train": _train, "eval": _eval, "plot": _plot}[args.command](args)
    except UsageError as e:
        print(f"minirl: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
