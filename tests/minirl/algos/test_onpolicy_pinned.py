"""Pins of short seeded on-policy training runs (A2C, PPO, REINFORCE on their RL-Zoo presets):
the SHA-256 of every saved array (parameters, Adam moments, normalizer and reward-scaler
statistics), the generator state and every logged metric (episode returns and lengths, losses,
explained variance) after the run.

The expected digests were computed with the code before the collection path was made cheaper
per call (normalizers, rollout bookkeeping, gSDE): a speed change must leave every number of a
seeded run bit-identical. A digest is a pin for this platform's NumPy/OpenBLAS build; on a
machine whose BLAS rounds differently, recompute them at the commit named in the git log
(``python tests/minirl/algos/test_onpolicy_pinned.py`` prints them) and compare there.

Re-pinned once on purpose: the A2C and REINFORCE digests changed when float32 loss *values*
(logged only) began to be summed in float64 (``minirl.nn.losses.mean_f64``); every saved
array and the generator state were checked bit-identical before and after that change (only
the logged ``policy_loss`` moved, by at most 7e-6 relative). PPO's digests did not change.
Re-pinned a second time on purpose: PPO's digests changed when the logged ``approx_kl_k3``
(diagnostic; early stopping only with target_kl > 0, off in these cases) began to form each
term (r - 1) - log r from its Taylor series near r = 1 instead of expm1(log r) - log r
(cancellation); every saved array, the generator state and every other logged metric were
checked bit-identical before and after, ``approx_kl_k3`` moved in its last digit.
"""
import hashlib
import json
import os

if __name__ == "__main__":   # as tests/conftest.py: one BLAS thread (REINFORCE's big matmul
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # rounds
        os.environ[_var] = "1"                                   # by the thread count)

import numpy as np  # noqa: E402
import pytest

from minirl.algos import ALGOS  # noqa: E402
from minirl.presets import find  # noqa: E402

# (algo, env, preset overrides replaced for a short run (None: default config), steps, seed);
# the MountainCarContinuous and Acrobot runs cut episodes at 120 and 60 steps (truncation:
# V of the true final observation), CartPole's end by termination: every case ends episodes.
CASES = {
    "a2c-mcc-gsde": ("a2c", "MountainCarContinuous-v0", {}, 2000, 3),
    "a2c-acrobot": ("a2c", "Acrobot-v1", {}, 2400, 1),
    "a2c-cartpole": ("a2c", "CartPole-v1", None, 1200, 0),
    "a2c-pendulum-mc-squash": ("a2c", "Pendulum-v1", dict(value_target="mc", num_envs=3,
                                                          action_bounds="squash"), 1200, 2),
    "ppo-cartpole": ("ppo", "CartPole-v1", {}, 768, 0),
    "ppo-mcc-gsde": ("ppo", "MountainCarContinuous-v0", dict(minibatch_size=4), 400, 5),
    "ppo-pendulum-norm": ("ppo", "Pendulum-v1", dict(num_steps=64, minibatch_size=64),
                          1024, 4),
    "reinforce-cartpole": ("reinforce", "CartPole-v1", None, 1500, 0),
}
EXPECTED = {
    'a2c-acrobot': 'ed6d18a323edae0b74fbf3aa3e75eeeb42623e926733a5fbd78a82824b920a49',
    'a2c-cartpole': '2ed3cf4da1265a3133fa783a2b4871a3dff78ae213cb244e50c0cbac21294b34',
    'a2c-mcc-gsde': '137138d5ea31e642ab882981d5842eaf8cd6fe2b53fe4da169558e7fe3e53eb9',
    'a2c-pendulum-mc-squash': '34c4f6c1133ac790572e88e6209faa4905a59b2b7f70b1217c875a560dc87fde',
    'ppo-cartpole': '12c6eb34d0b2d2aa5b404ecef652b89a0fb1b024348d8062ab542c90f3b54026',
    'ppo-mcc-gsde': '7fc5e4e24a02dc0a6394c0abd57d782e8b7960efac4720ec3b5caa8d0bc7bed5',
    'ppo-pendulum-norm': 'ce593b284c18d14c854b886f7136273097be8735abde5f013e5b5373dc831580',
    'reinforce-cartpole': '3539fa4423bf3c2c1c5ab61d2a3528bff8a5821af96560f166c987188e638d07',
}


def _jsonable(v):
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (np.floating, float)):
        return float(v).hex()
    if isinstance(v, (np.integer, int)):
        return int(v)
    return repr(v)


def run_digest(name: str) -> str:
    algo, env, overrides, steps, seed = CASES[name]
    cls = ALGOS[algo]
    if overrides is None:
        cfg, env_kwargs = cls.Config(), None
    else:
        preset = find(algo, env)
        cfg, env_kwargs = cls.Config(**{**preset.overrides, **overrides}), preset.env_kwargs
    cut = {"MountainCarContinuous-v0": 120, "Acrobot-v1": 60}.get(env)
    if cut:
        env_kwargs = {**(env_kwargs or {}), "max_episode_steps": cut}
    agent = cls(env, cfg, seed=seed, env_kwargs=env_kwargs)
    logged = []
    agent.learn(steps, callback=lambda a, m: logged.append(
        {k: _jsonable(v) for k, v in sorted(m.items())}))
    h = hashlib.sha256()
    for k, v in sorted(agent.state_arrays().items()):
        v = np.ascontiguousarray(v)
        h.update(f"{k}:{v.dtype}:{v.shape}".encode())
        h.update(v.tobytes())
    h.update(json.dumps(logged, sort_keys=True).encode())
    h.update(json.dumps(agent.rng.bit_generator.state, sort_keys=True).encode())
    assert sum(len(m["episode_returns"]) for m in logged) > 0, name
    return h.hexdigest()


@pytest.mark.parametrize("name", sorted(CASES))
def test_seeded_run_is_bit_identical_to_the_pinned_digest(name):
    assert run_digest(name) == EXPECTED[name]


if __name__ == "__main__":
    for n in sorted(CASES):
        print(f"    {n!r}: {run_digest(n)!r},")
