"""Start-up cost of the kernels: "import + first call", cold (empty Numba cache) and warm.

Every measurement is a fresh process (``sys.executable -c ...``), so imports are real:

* **cold** -- ``NUMBA_CACHE_DIR`` points at a new, empty temporary directory, so every
  ``@numba.njit(cache=True)`` kernel is compiled (and written to that cache) on its first call.
  One run: a second one would not be cold.
* **warm** -- the same command again with that cache directory present: the kernels are loaded
  from the cache. Median of 3 runs (1 with ``--quick``).
* **baseline** -- ``python -c "import numpy"`` (and ``import numpy, numba``, the floor any Numba
  package pays), timed the same way in the same run, so ``warm_vs_numpy`` is a ratio of two
  figures measured side by side on the same machine load.

Inside the child process each step is timed with ``perf_counter``: importing NumPy + Numba,
importing each ``kernels.<topic>`` module, and the first call of each public kernel on small
float64 inputs (``T, N = 16, 4``). In the cold run the first call is the compile time of that
kernel (plus writing its cache file); in the warm run it is the cache load. Before the kernels,
every child calls a trivial ``@njit(cache=True)`` function kept in a scratch directory, so the
one-off Numba/LLVM set-up (cold: first compile; warm: first cache load, ~0.25 s) is reported on
its own line instead of being charged to whichever kernel happens to come first; the
whole-process figures include it, as any real start does.

Target (issue 2): warm start of all kernels, whole process, under 1 s.

Public kernels are discovered, not listed: for each topic module that exists, the names in its
``__all__`` (else its public functions), minus the ``*_reference`` and ``*_numpy``
implementations, keeping the functions that reach a Numba dispatcher. Their arguments are built
from minirl's argument names (STYLE.md, principle 3); a kernel whose arguments cannot be built
that way needs an entry in ``CALLS``. A module that does not exist yet is listed as
"not present", one that fails to import with its error.
"""
from __future__ import annotations

import importlib
import inspect
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._harness import Table, emit

ROOT = Path(__file__).resolve().parent.parent
MODULES = ("returns", "gae", "nstep", "importance", "replay", "unique")
TARGET_WARM_S = 1.0

# Explicit first-call arguments for kernels whose parameters are not plain rollout arrays,
# as Python source evaluated in the child with the sample namespace below (``np``, ``rng``,
# ``rewards``, ... and every other name in ``_SAMPLES``) plus the module as ``mod``.
# "args" is a tuple expression, "kwargs" a dict expression; "setup" runs first (statements).
CALLS: dict[str, dict[str, str]] = {}

_PROBE = """import numba


@numba.njit(cache=True)
def probe(x):
    return x + 1
"""

# The child: stdlib only until it imports NumPy/Numba, which it times as its first step.
_CHILD = r'''
import json, sys, time
t_start = time.perf_counter()
spec = json.loads(sys.argv[1])
out = {"steps": {}, "errors": {}}
def step(key, fn):
    t0 = time.perf_counter()
    try:
        fn()
    except Exception as exc:  # report, keep going: one broken kernel must not hide the others
        out["errors"][key] = f"{type(exc).__name__}: {exc}"[:300]
    out["steps"][key] = time.perf_counter() - t0

def _imp():
    global np, numba
    import numpy as np, numba
step("import numpy + numba", _imp)
def _probe():
    # A trivial cached @njit function: in the cold run its first call pays Numba/LLVM's
    # one-off set-up plus a tiny compile, in the warm run the one-off cost of the first cache
    # load. Either way that cost is reported here instead of being charged to the first kernel.
    sys.path.insert(0, spec["probe_dir"])
    import _minirl_startup_probe
    _minirl_startup_probe.probe(1)
    sys.path.pop(0)
step("numba set-up: trivial cached @njit", _probe)

import importlib, inspect
mods = {}
for m in spec["modules"]:
    step(f"import kernels.{m}", lambda: mods.__setitem__(m, importlib.import_module("kernels." + m)))

T, N = 16, 4
def samples():
    rng = np.random.default_rng(0)
    terminated = np.zeros((T, N), bool); terminated[[5, 11], [0, 2]] = True
    truncated = np.zeros((T, N), bool); truncated[[8], [1]] = True
    f = lambda *shape: rng.standard_normal(shape or (T, N))
    s = dict(np=np, rng=np.random.default_rng(1), T=T, N=N,
             rewards=f(), values=f(), next_values=f(), adv=f(), returns=f(),
             logp=f(), logp_old=f(), target_logp=f(), behavior_logp=f(), log_rho=f(),
             log_ratio=f(), q_values=f(), next_q_values=f(), x=f(), u=rng.random((T, N)),
             terminated=terminated, truncated=truncated, dones=terminated | truncated,
             bootstrap_values=f(N), last_values=f(N),
             gamma=0.99, lam=0.95, n=3, n_step=3, k=2, axis=-1, tau=0.005, clip_eps=0.2,
             rho_bar=1.0, c_bar=1.0, alpha=0.6, beta=0.4,
             capacity=64, batch_size=8, priorities=rng.random(64) + 0.1,
             indices=rng.integers(0, 64, 8), idx=rng.integers(0, 64, 8))
    return s
S = samples()

def call_args(fn, key):
    if key in spec["calls"]:
        c = spec["calls"][key]
        ns = dict(S, mod=mods[key.split(".")[0]])
        exec(c.get("setup", ""), ns)
        return eval(c.get("args", "()"), ns), eval(c.get("kwargs", "{}"), ns)
    args, kwargs = [], {}
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or (p.default is not p.empty and p.name not in ("rng",)):
            continue
        if p.name not in S:
            raise LookupError(f"no sample value for argument {p.name!r}: add it to CALLS")
        if p.kind == p.KEYWORD_ONLY:
            kwargs[p.name] = S[p.name]
        else:
            args.append(S[p.name])
    return args, kwargs

for key in spec["kernels"]:
    m, name = key.split(".")
    if m not in mods:
        continue
    fn = getattr(mods[m], name)
    try:
        a, kw = call_args(fn, key)
    except Exception as exc:
        out["errors"][key + "()"] = f"{type(exc).__name__}: {exc}"[:300]
        continue
    step(key + "()", lambda: fn(*a, **kw))

out["total"] = time.perf_counter() - t_start
print("@@STARTUP@@" + json.dumps(out))
'''


def _module_functions(mod) -> list[str]:
    names = getattr(mod, "__all__", None)
    if names is None:
        names = [n for n, v in vars(mod).items()
                 if inspect.isfunction(v) and v.__module__ == mod.__name__]
    return [n for n in names if not n.startswith("_")
            and not n.endswith(("_reference", "_numpy")) and callable(getattr(mod, n, None))]


def _reaches_dispatcher(fn, module_globals, seen=None) -> bool:
    """Does ``fn`` (or a module-level function it calls, transitively) use a Numba dispatcher?"""
    from numba.core.dispatcher import Dispatcher

    seen = set() if seen is None else seen
    code = getattr(fn, "__code__", None)
    if code is None or code in seen:
        return False
    seen.add(code)
    codes = [code] + [c for c in code.co_consts if inspect.iscode(c)]
    for c in codes:
        for name in c.co_names:
            obj = module_globals.get(name)
            if isinstance(obj, Dispatcher):
                return True
            if inspect.isfunction(obj) and _reaches_dispatcher(obj, module_globals, seen):
                return True
    return False


def discover() -> dict[str, list[str] | str | None]:
    """``{topic: [public kernel names]}``; ``None`` if the file is absent, a string on error.

    Imports the modules in this process (which does not compile anything: Numba compiles on
    the first call). The timed imports happen in the child processes.
    """
    found: dict[str, list[str] | str | None] = {}
    for m in MODULES:
        if not (ROOT / "kernels" / f"{m}.py").exists():
            found[m] = None
            continue
        try:
            mod = importlib.import_module(f"kernels.{m}")
        except Exception as exc:  # noqa: BLE001 - a module being written may not import yet
            found[m] = f"import failed: {type(exc).__name__}: {exc}"
            continue
        found[m] = [n for n in _module_functions(mod)
                    if _reaches_dispatcher(getattr(mod, n), vars(mod))]
    return found


def _run(code: str, *args: str, env: dict | None = None) -> tuple[float, str]:
    """Wall time of ``python -c code args`` (spawn to exit) and its stdout."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"startup child failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return wall, proc.stdout


def _child(spec: dict, cache_dir: str) -> tuple[float, dict]:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    env.pop("NUMBA_DISABLE_JIT", None)
    wall, stdout = _run(_CHILD, json.dumps(spec), env=env)
    line = next(l for l in stdout.splitlines() if l.startswith("@@STARTUP@@"))
    return wall, json.loads(line[len("@@STARTUP@@"):])


def _median_wall(code: str, repeats: int) -> float:
    _run(code)  # discarded: brings the files into the OS cache like the kernel runs
    return statistics.median(_run(code)[0] for _ in range(repeats))


def main(quick: bool = False) -> None:
    repeats = 1 if quick else 3
    found = discover()
    present = [m for m, v in found.items() if isinstance(v, list)]
    kernels = [f"{m}.{n}" for m in present for n in found[m]]
    spec = {"modules": present, "kernels": kernels, "calls": CALLS}

    base_numpy = _median_wall("import numpy", repeats)
    base_numba = _median_wall("import numpy, numba", repeats)

    with tempfile.TemporaryDirectory(prefix="minirl-startup-") as scratch:
        cache_dir, spec["probe_dir"] = os.path.join(scratch, "numba-cache"), scratch
        Path(scratch, "_minirl_startup_probe.py").write_text(_PROBE)
        cold_wall, cold = _child(spec, cache_dir)
        warm_runs = [_child(spec, cache_dir) for _ in range(repeats)]
        n_cached = sum(len(files) for _, _, files in os.walk(cache_dir))
    warm_wall = statistics.median(w for w, _ in warm_runs)

    def warm(key):
        vals = [r["steps"][key] for _, r in warm_runs if key in r["steps"]]
        return statistics.median(vals) if vals else float("nan")

    nan = float("nan")
    table = Table(f"start-up: import + first call, fresh processes (warm = median of {repeats})")
    table.add(what='python -c "import numpy" (baseline)', cold_s=nan, warm_s=base_numpy,
              warm_vs_numpy=1.0, note="whole process")
    table.add(what='python -c "import numpy, numba"', cold_s=nan, warm_s=base_numba,
              warm_vs_numpy=base_numba / base_numpy, note="whole process; the Numba floor")
    verdict = "PASS" if warm_wall < TARGET_WARM_S else "FAIL"
    table.add(what=f"all kernels: import + first call ({len(kernels)} kernels)", cold_s=cold_wall,
              warm_s=warm_wall, warm_vs_numpy=warm_wall / base_numpy,
              note=f"whole process; target warm < {TARGET_WARM_S:g} s: {verdict}; "
                   f"{n_cached} cache files")
    errors = dict(cold["errors"])
    for _, r in warm_runs:
        for k, v in r["errors"].items():
            errors.setdefault(k, v)
    for key, cold_s in cold["steps"].items():
        is_call = key.endswith("()")
        note = ("compile (cold) / cache load (warm)" if is_call else
                "one-off: first compile (cold) / first cache load (warm)"
                if key.startswith("numba set-up") else "in-process")
        if key in errors:
            note = "ERROR " + errors[key]
        # in-process steps: no ratio, a step is not comparable with a whole process
        table.add(what=("  " + key), cold_s=cold_s, warm_s=warm(key), warm_vs_numpy=nan,
                  note=note)
    for key, msg in errors.items():  # kernels that never got to run (no sample arguments)
        if key not in cold["steps"]:
            table.add(what="  " + key, cold_s=nan, warm_s=nan, warm_vs_numpy=nan,
                      note="NOT RUN " + msg)
    for m, v in found.items():
        if v is None:
            table.add(what=f"  kernels.{m}", cold_s=nan, warm_s=nan, warm_vs_numpy=nan,
                      note="not present")
        elif isinstance(v, str):
            table.add(what=f"  kernels.{m}", cold_s=nan, warm_s=nan, warm_vs_numpy=nan, note=v)
        elif not v:
            table.add(what=f"  kernels.{m}", cold_s=nan, warm_s=nan, warm_vs_numpy=nan,
                      note="no public function reaches a Numba kernel")
    emit(table, "startup")


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
