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

Inside the child process each step is timed with ``perf_counter`` (wall) and ``process_time``
(CPU): importing NumPy + Numba, importing each ``kernels.<topic>`` module, and the first call of
each public kernel on small float64 inputs (``T, N = 16, 4``; batch 8 from 64 slots). In the
cold run the first call is the compile time of that kernel (plus writing its cache file); in
the warm run it is the cache load. Before the kernels, every child calls a trivial
``@njit(cache=True)`` function kept in a scratch directory, so Numba's one-off set-up (cold:
first compile; warm: first cache load, ~0.3 s CPU, much of it Numba importing ``scipy.linalg``
to look for BLAS while it loads its registries) is reported on its own line instead of being
charged to whichever kernel happens to come first; the whole-process figures include it, as
any real start does.

Whole processes are reported as wall time (what a user waits for) and as the child's CPU time
(``getrusage``; what the process itself consumed), because wall time inflates when other jobs
share the cores and CPU time mostly does not.

Target (issue 2): warm start of all kernels, whole process, under 1 s.

Public kernels are discovered, not listed: for each topic module that exists, the names in its
``__all__`` (else its public functions and classes), minus the ``*_reference`` and ``*_numpy``
implementations, keeping the functions -- and the methods of public classes, run in declaration
order on one shared instance -- that reach a Numba dispatcher. Their arguments are built
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

try:
    import resource  # POSIX only: the children's CPU time
except ImportError:  # pragma: no cover - Windows: CPU columns stay NaN
    resource = None

ROOT = Path(__file__).resolve().parent.parent
# Every kernels/<topic>.py: these first (the order of the table), then any other topic module
# in kernels/, so that a new kernel file is never left out of "all kernels".
_FIRST = ("returns", "gae", "nstep", "importance", "replay", "unique", "activations", "optim",
          "qstep")
MODULES = _FIRST + tuple(sorted(p.stem for p in (ROOT / "kernels").glob("*.py")
                                if not p.stem.startswith("_") and p.stem not in _FIRST))
TARGET_WARM_S = 1.0

# Explicit first calls for kernels whose arguments the name-based builder cannot make, e.g.
# ``"replay.SumTree.find": {"setup": "tree = mod.SumTree(capacity)", "call": "tree.find(u)"}``:
# "setup" (statements, untimed) and "call" (an expression, timed) run in the child's sample
# namespace (``np``, ``rng``, ``rewards``, ... see ``samples()`` in ``_CHILD``), plus ``mod``
# (the topic module) and ``instances`` (the objects of public classes, by class name).
# The DQN step kernels run on a 4-8-2 ReLU network (58 parameters) with a batch of B = 8,
# K = 2 batches for q_steps; their Adam coefficients come from kernels.optim (untimed set-up).
_QSTEP_SETUP = """
from kernels.optim import checked_coefficients, checked_coefficient_rows
sizes = np.array([4, 8, 2], np.int64)
params, target_params = rng.standard_normal(58) * 0.1, rng.standard_normal(58) * 0.1
m, v = np.zeros(58), np.zeros(58)
obs, next_obs = rng.standard_normal((2, 8, 4)), rng.standard_normal((2, 8, 4))
acts, rets, discs = rng.integers(0, 2, (2, 8)), rng.standard_normal((2, 8)), np.full((2, 8), 0.99)
coef = checked_coefficients(np.float64, 1e-3, 0.9, 0.999, 1e-8, 1, 0.0, True)
coefs = checked_coefficient_rows(np.float64, [1e-3, 1e-3], 0.9, 0.999, 1e-8, 1, 0.0, True)
"""
CALLS: dict[str, dict[str, str]] = {
    "activations.tanh_f32": {"call": "mod.tanh_f32(x.astype(np.float32))"},
    "unique.greedy_with_ties": {"call": "mod.greedy_with_ties(q_values)"},
    "optim.adam_update": {"setup": "p, g = x.ravel().copy(), x.ravel() * 0.5",
                          "call": "mod.adam_update(p, g, np.zeros_like(p), np.zeros_like(p), "
                                  "1e-3, 0.9, 0.999, 1e-8, 1)"},
    "qstep.q_step": {"setup": _QSTEP_SETUP,
                     "call": "mod.q_step(params, target_params, m, v, sizes, obs[0], acts[0], "
                             "rets[0], discs[0], next_obs[0], None, False, True, 1.0, 10.0, "
                             "coef)"},
    "qstep.q_steps": {"setup": _QSTEP_SETUP,
                      "call": "mod.q_steps(params, target_params, m, v, sizes, obs, acts, rets, "
                              "discs, next_obs, False, True, 1.0, 10.0, coefs, "
                              "lambda k, p, m_, v_: (p, m_, v_))"},
    "qstep.q_values": {"setup": _QSTEP_SETUP, "call": "mod.q_values(params, sizes, obs[0])"},
}
# importance_weights(..., mode): one kernel serves every mode, so one first call compiles it.
IMPORTANCE_MODE = "per_decision"

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
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        fn()
    except Exception as exc:  # report, keep going: one broken kernel must not hide the others
        out["errors"][key] = f"{type(exc).__name__}: {exc}"[:300]
    out["steps"][key] = [time.perf_counter() - t0, time.process_time() - c0]

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
    step(f"import kernels.{m}",
         lambda: mods.__setitem__(m, importlib.import_module("kernels." + m)))

T, N, B, C = 16, 4, 8, 64  # rollout [T, N]; batch B of a buffer/tree of capacity C
def samples():
    rng = np.random.default_rng(0)
    terminated = np.zeros((T, N), bool); terminated[[5, 11], [0, 2]] = True
    truncated = np.zeros((T, N), bool); truncated[[8], [1]] = True
    f = lambda *shape: rng.standard_normal(shape or (T, N))
    priorities = rng.random(B) + 0.5
    return dict(np=np, rng=np.random.default_rng(1), rng_or_seed=np.random.default_rng(2),
                T=T, N=N, rewards=f(), values=f(), next_values=f(), adv=f(), returns=f(),
                logp=f(), logp_old=f(), logp_new=f(), target_logp=f(), behavior_logp=f(),
                log_rho=f(), log_ratio=f(), q_values=f(), next_q_values=f(), x=f(),
                terminated=terminated, truncated=truncated, dones=terminated | truncated,
                bootstrap_values=f(N), last_values=f(N),
                gamma=0.99, lam=0.95, n=3, n_step=3, k=2, axis=-1, tau=0.005, clip_eps=0.2,
                mode=spec["mode"], rho_bar=1.0, c_bar=1.0, alpha=0.6, beta=0.4,
                capacity=C, size=C, batch_size=B, indices=rng.integers(0, C, B),
                priorities=priorities, u=rng.random(B) * priorities.sum(),
                total=float(priorities.sum()), min_priority=float(priorities.min()))
S = samples()

def build_args(fn):
    """Positional/keyword arguments for ``fn`` from S by parameter name (defaults kept)."""
    args, kwargs = [], {}
    for p in list(inspect.signature(fn).parameters.values()):
        if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.default is not p.empty and p.name != "rng":
            continue
        if p.name not in S:
            raise LookupError(f"no sample value for argument {p.name!r}: add it to CALLS")
        if p.kind == p.KEYWORD_ONLY:
            kwargs[p.name] = S[p.name]
        else:
            args.append(S[p.name])
    return args, kwargs

instances = {}  # one object per public class; its methods run in declaration order, sharing it
def thunk(key):
    """A zero-argument call of kernel ``key`` ("topic.func" or "topic.Class.method")."""
    parts = key.split(".")
    mod = mods[parts[0]]
    if key in spec["calls"]:
        c = spec["calls"][key]
        ns = dict(S, mod=mod, instances=instances)
        exec(c.get("setup", ""), ns)
        code = compile(c["call"], key, "eval")
        return lambda: eval(code, ns)
    if len(parts) == 2:
        fn = getattr(mod, parts[1])
        a, kw = build_args(fn)
        return lambda: fn(*a, **kw)
    cls = getattr(mod, parts[1])
    if parts[2] == "__init__":
        a, kw = build_args(cls.__init__)
        return lambda: instances.__setitem__(parts[1], cls(*a, **kw))
    if parts[1] not in instances:
        a, kw = build_args(cls.__init__)
        instances[parts[1]] = cls(*a, **kw)
    meth = getattr(instances[parts[1]], parts[2])
    a, kw = build_args(meth)
    return lambda: meth(*a, **kw)

for key in spec["kernels"]:
    if key.split(".")[0] not in mods:
        continue
    try:
        fn = thunk(key)
    except Exception as exc:
        out["errors"][key + "()"] = f"{type(exc).__name__}: {exc}"[:300]
        continue
    step(key + "()", fn)

out["total"] = time.perf_counter() - t_start
print("@@STARTUP@@" + json.dumps(out))
'''


def _public_kernels(mod) -> list[str]:
    """Public names of ``mod`` that reach a Numba kernel: ``func`` or ``Class.method``.

    Public = in ``__all__`` (else defined in the module without a leading underscore), minus
    the ``*_reference`` / ``*_numpy`` implementations. For a public class, its methods that
    reach a kernel, in declaration order (``__init__`` included if it does).
    """
    names = getattr(mod, "__all__", None)
    if names is None:
        names = [n for n, v in vars(mod).items()
                 if (inspect.isfunction(v) or inspect.isclass(v))
                 and getattr(v, "__module__", None) == mod.__name__]
    g = vars(mod)
    found = []
    for n in names:
        obj = getattr(mod, n, None)
        if n.startswith("_") or n.endswith(("_reference", "_numpy")) or obj is None:
            continue
        if inspect.isclass(obj):
            found += [f"{n}.{m}" for m, f in vars(obj).items()
                      if (m == "__init__" or not m.startswith("_")) and inspect.isfunction(f)
                      and _reaches_dispatcher(f, g)]
        elif _reaches_dispatcher(obj, g):
            found.append(n)
    return found


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
        found[m] = _public_kernels(mod)
    return found


def _run(code: str, *args: str, env: dict | None = None) -> tuple[float, float, str]:
    """``python -c code args``: wall time (spawn to exit), the child's CPU time, its stdout.

    Both are reported: the wall time is what a user waits for; the CPU time (user + system,
    from ``getrusage``) is what the process itself consumed, which stays meaningful when other
    jobs share the cores and inflate the wall time.
    """
    usage = (lambda: resource.getrusage(resource.RUSAGE_CHILDREN)) if resource else None
    r0 = usage() if usage else None
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    cpu = float("nan")
    if usage:
        r1 = usage()
        cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    if proc.returncode != 0:
        raise RuntimeError(f"startup child failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return wall, cpu, proc.stdout


def _child(spec: dict, cache_dir: str) -> tuple[float, float, dict]:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    env.pop("NUMBA_DISABLE_JIT", None)
    wall, cpu, stdout = _run(_CHILD, json.dumps(spec), env=env)
    line = next(l for l in stdout.splitlines() if l.startswith("@@STARTUP@@"))
    return wall, cpu, json.loads(line[len("@@STARTUP@@"):])


def _median_run(code: str, repeats: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``python -c code`` after one discarded run."""
    _run(code)  # discarded: brings the files into the OS cache like the kernel runs
    runs = [_run(code) for _ in range(repeats)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def _kernel_stamps() -> dict[str, int]:
    """Modification times of the kernel sources (Numba's cache is keyed on them)."""
    return {p.name: p.stat().st_mtime_ns for p in sorted((ROOT / "kernels").glob("*.py"))}


def _cold_and_warm(spec: dict, repeats: int):
    """One cold child on an empty cache, then ``repeats`` warm children on the cache it left.

    Returns the cold run, the warm runs, the number of cache files and whether a warm run
    added cache files (i.e. compiled something, so it was not warm).
    """
    with tempfile.TemporaryDirectory(prefix="minirl-startup-") as scratch:
        cache_dir, spec = os.path.join(scratch, "numba-cache"), dict(spec, probe_dir=scratch)
        Path(scratch, "_minirl_startup_probe.py").write_text(_PROBE)
        count = lambda: sum(len(files) for _, _, files in os.walk(cache_dir))  # noqa: E731
        cold_wall, cold_cpu, cold = _child(spec, cache_dir)
        n_cold = count()
        warm_runs = [_child(spec, cache_dir) for _ in range(repeats)]
        n_cached = count()
    return cold_wall, cold_cpu, cold, warm_runs, n_cached, n_cached != n_cold


def main(quick: bool = False) -> None:
    repeats = 1 if quick else 3
    found = discover()
    present = [m for m, v in found.items() if isinstance(v, list)]
    kernels = [f"{m}.{n}" for m in present for n in found[m]]
    spec = {"modules": present, "kernels": kernels, "calls": CALLS, "mode": IMPORTANCE_MODE}

    numpy_wall, numpy_cpu = _median_run("import numpy", repeats)
    numba_wall, numba_cpu = _median_run("import numpy, numba", repeats)
    for attempt in range(2):  # a kernel edited mid-run makes the warm runs recompile: retry once
        stamp = _kernel_stamps()
        cold_wall, cold_cpu, cold, warm_runs, n_cached, recompiled = _cold_and_warm(spec, repeats)
        stable = not recompiled and _kernel_stamps() == stamp
        if stable:
            break
        print("bench_startup: a kernel changed or recompiled during the warm runs"
              + ("; measuring again" if attempt == 0 else ""), file=sys.stderr, flush=True)
    warm_wall = statistics.median(r[0] for r in warm_runs)
    warm_cpu = statistics.median(r[1] for r in warm_runs)

    nan = float("nan")

    def warm(key, i):  # median over the warm runs of one in-process step (i: 0 wall, 1 CPU)
        vals = [r[2]["steps"][key][i] for r in warm_runs if key in r[2]["steps"]]
        return statistics.median(vals) if vals else nan

    def whole(what, cold_s, warm_s, cold_cpu_s, warm_cpu_s, note):
        table.add(what=what, cold_s=cold_s, warm_s=warm_s, cold_cpu_s=cold_cpu_s,
                  warm_cpu_s=warm_cpu_s, warm_vs_numpy=warm_s / numpy_wall,
                  warm_cpu_vs_numpy=warm_cpu_s / numpy_cpu, note=note)

    def part(what, cold_s=nan, warm_s=nan, cold_cpu_s=nan, warm_cpu_s=nan, note=""):
        # in-process steps get no ratio: a step is not comparable with a whole process
        table.add(what="  " + what, cold_s=cold_s, warm_s=warm_s, cold_cpu_s=cold_cpu_s,
                  warm_cpu_s=warm_cpu_s, warm_vs_numpy=nan, warm_cpu_vs_numpy=nan, note=note)

    table = Table(f"start-up: import + first call, fresh processes (warm = median of {repeats}; "
                  f"cpu = the child's user+system time)")
    whole('python -c "import numpy" (baseline)', nan, numpy_wall, nan, numpy_cpu, "whole process")
    whole('python -c "import numpy, numba"', nan, numba_wall, nan, numba_cpu,
          "whole process; the floor of any Numba package")
    verdict = "PASS" if warm_wall < TARGET_WARM_S else "FAIL"
    whole(f"all kernels: import + first call ({len(kernels)} kernels)", cold_wall, warm_wall,
          cold_cpu, warm_cpu, f"whole process; target warm < {TARGET_WARM_S:g} s (wall): "
          f"{verdict}; {n_cached} cache files"
          + ("" if stable else "; WARNING: kernels recompiled in a warm run (edited mid-run?)"))
    errors = dict(cold["errors"])
    for r in warm_runs:
        for k, v in r[2]["errors"].items():
            errors.setdefault(k, v)
    for key, (cold_s, cold_c) in cold["steps"].items():
        note = ("compile (cold) / cache load (warm)" if key.endswith("()") else
                "one-off: first compile (cold) / first cache load (warm)"
                if key.startswith("numba set-up") else "in-process")
        if key.endswith("()") and cold_s < 0.02:
            note = "its kernel was already compiled/loaded by an earlier call"
        if key in errors:
            note = "ERROR " + errors[key]
        part(key, cold_s, warm(key, 0), cold_c, warm(key, 1), note)
    for key, msg in errors.items():  # kernels that never got to run (no sample arguments)
        if key not in cold["steps"]:
            part(key, note="NOT RUN " + msg)
    for m, v in found.items():
        if v is None:
            part(f"kernels.{m}", note="not present")
        elif isinstance(v, str):
            part(f"kernels.{m}", note=v)
        elif not v:
            part(f"kernels.{m}", note="no public function reaches a Numba kernel")
    emit(table, "startup", quick)


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
