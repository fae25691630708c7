"""Run the micro-benchmarks: ``python -m benchmarks [--quick] [--only NAME ...]``.

Every ``benchmarks/bench_<name>.py`` exposes ``main(quick: bool) -> None``, which prints its
tables and writes ``benchmarks/results/<name>*.csv`` (atomically; an existing table is
replaced with a line saying so). ``--quick`` uses fewer repeats and the smallest sizes (a smoke
run, not figures to quote) and writes to a temporary directory, never to benchmarks/results.
"""
import argparse
import importlib
import pkgutil
import sys
from pathlib import Path


def main(argv=None) -> int:
    here = Path(__file__).resolve().parent
    names = sorted(m.name[len("bench_"):] for m in pkgutil.iter_modules([str(here)])
                   if m.name.startswith("bench_"))
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("--quick", action="store_true", help="smallest sizes, fewer repeats")
    p.add_argument("--only", nargs="+", choices=names, metavar="NAME",
                   help=f"run only these ({', '.join(names)})")
    args = p.parse_args(argv)
    for name in args.only or names:
        print(f"# bench_{name}", flush=True)
        importlib.import_module(f"benchmarks.bench_{name}").main(quick=args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
