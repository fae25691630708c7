"""gSDE held-noise action: cost of the overflow check on the normal (finite) path.

``StateDependentNoise.rsample_with_noise`` computes ``mean + z @ (exp(log_std) * eps)`` and,
since the overflow fix, checks that ``a.ravel() @ a.ravel()`` is finite before returning (the
fallback runs only when it is not, never here). ``old`` below is the pre-fix body (same
operations and eps validation, no check), ``new`` the method itself. The two are timed in
alternating rounds on the CPU-time clock (``time.thread_time``), medians of ROUNDS rounds of
REPS calls each; ``ratio`` = new / old. Shapes: N envs x F features x D actions, one held eps [F, D] (SB3's default) and
one per env [N, F, D].

    nice -n 5 .venv/bin/python -m benchmarks.bench_sde_noise
"""
from __future__ import annotations

import statistics
import time

import numpy as np

from benchmarks import _harness
from benchmarks._harness import announce_replace, atomic_write_text
from minirl.distributions import StateDependentNoise

ROUNDS, REPS = 21, 200
SHAPES = ((1, 64, 1), (8, 64, 6), (64, 256, 17))


def _old(d, eps):
    """The pre-fix method body (commit 0d87eee), line for line."""
    eps = d._noise(eps)
    with np.errstate(over="ignore"):
        theta = np.exp(d.log_std) * eps
        if eps.ndim == 2:
            noise = d.features @ theta
        else:
            noise = np.einsum("...f,...fd->...d", d.features, theta)
    return (d.mean + noise).astype(d.dtype, copy=False)


def _time(f, d, eps, reps=REPS):
    t = time.thread_time()
    for _ in range(reps):
        f(d, eps)
    return (time.thread_time() - t) / reps


def main(quick: bool = False) -> None:
    """``quick`` (``python -m benchmarks --quick``): 3 rounds of 20 calls, written to a
    temporary directory (a smoke run)."""
    rounds, reps = (3, 20) if quick else (ROUNDS, REPS)
    rng = np.random.default_rng(0)
    rows = []
    for N, F, D in SHAPES:
        d = StateDependentNoise(rng.standard_normal((N, D)), rng.uniform(-2, 0, (F, D)),
                                rng.standard_normal((N, F)))
        for per_env in (False, True):
            eps = rng.standard_normal((N, F, D) if per_env else (F, D))
            assert np.array_equal(_old(d, eps), d.rsample_with_noise(eps))
            new = lambda dd, e: dd.rsample_with_noise(e)
            olds, news = [], []
            for _ in range(rounds):
                olds.append(_time(_old, d, eps, reps))
                news.append(_time(new, d, eps, reps))
            o, n = statistics.median(olds), statistics.median(news)
            rows.append((f"{N}x{F}x{D}", "[N, F, D]" if per_env else "[F, D]", o, n, n / o))
    lines = [__doc__.split("\n")[0], "",
             "Command: `nice -n 5 .venv/bin/python -m benchmarks.bench_sde_noise` (CPU time per "
             f"call, medians of {rounds} alternating rounds of {reps} calls; shared machine).", "",
             "| N x F x D | eps | old_us | new_us | ratio |",
             "|---|---|---|---|---|"]
    lines += [f"| {s} | {e} | {o * 1e6:.2f} | {n * 1e6:.2f} | {r:.3f} |" for s, e, o, n, r in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if quick:
        _harness.smoke_results("--quick")
    out = _harness.RESULTS / "sde_held_noise_overhead.md"
    announce_replace(out)
    atomic_write_text(out, text)


if __name__ == "__main__":
    main()
