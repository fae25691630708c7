"""Pins of short seeded on-policy training runs (A2C, PPO, REINFORCE on their RL-Zoo presets):
the SHA-256 of every saved array (parameters, Adam moments, normalizer and reward-scaler
statistics), the generator state and every logged metric (episode returns and lengths, losses,
explained variance) after the run.

The expected digests were computed with the code before the collection path was made cheaper
per call (normalizers, rollout bookkeeping, gSDE): a speed change must leave every number of a
seeded run bit-identical. A digest is a pin for this platform's NumPy/OpenBLAS build; on a
machine whose BLAS rounds differently, recompute them at the commit named in the git log
(``python tests/minirl/algos/test_onpolicy_pinned.py`` prints them) and compare there.
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
    'a2c-acrobot': '812a76a371ded6693d3171eef7138a1893a65b7e6bf79c25916d9a72f0383900',
    'a2c-cartpole': '0dc8c8cdf5d62788818c8a65696e0e5b5d9b824e5a51e23eb2a4bd25af0fea6b',
    'a2c-mcc-gsde': '46a4a7fb9b13c3d6be0afacbfde7b97960dd1acc7a3bf13a1c81662b7928b971',
    'a2c-pendulum-mc-squash': 'e75fe31eaefd35bb5a37941392938fc7856f746a64910be477fe8f76ac8b79de',
    'ppo-cartpole': '4d0665b4913dfd7b587085cb80618b34199395b36e4d71f5443d1c84eac24f50',
    'ppo-mcc-gsde': 'f9a66c90b05e4527656dd2286fd0979c9816fec62035258235786006913fc8a3',
    'ppo-pendulum-norm': '6bd0cec2d65de1bcda7fd5091b8296cee2b1d31c5c8b027bb82313431c178a67',
    'reinforce-cartpole': 'b5109b08d19cf2720bde5cd7ee0852c2e6960f32ad4bdb2ba4992e837a9b1a8f',
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
