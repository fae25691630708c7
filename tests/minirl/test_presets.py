"""Tests for minirl/presets.py: every row cites a source and builds a valid config."""
import dataclasses

import pytest

from minirl.algos import ALGOS, PRESETS
from minirl.presets import RL_ZOO_RESULTS, TABLE, describe, find, overrides_for

ISSUE_ENVS = ["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0",
              "Pendulum-v1", "LunarLander-v3", "LunarLanderContinuous-v3", "BipedalWalker-v3",
              "InvertedPendulum-v5", "Hopper-v5", "HalfCheetah-v5"]


def test_every_row_has_a_source_and_a_budget():
    assert len({(p.algo, p.env) for p in TABLE}) == len(TABLE)      # no duplicate rows
    for p in TABLE:
        assert p.source.strip(), f"{p.algo}/{p.env} has no source"
        assert ("hyperparams/" in p.source or "arXiv" in p.source or "tuned_examples" in p.source), \
            f"{p.algo}/{p.env}: the source names no file or paper: {p.source!r}"
        assert p.steps > 0, f"{p.algo}/{p.env} has no budget"
        if "use_sde" in p.note or "gSDE" in p.source:
            assert p.note, f"{p.algo}/{p.env} relies on gSDE without a note"


@pytest.mark.parametrize("preset", TABLE, ids=lambda p: f"{p.algo}-{p.env}")
def test_every_row_builds_its_algorithm_config(preset):
    """A row naming a field the config lacks, or a value it rejects, fails here (loudly), not
    in a user's run. Rows of algorithms not registered yet are skipped by name."""
    if preset.algo not in ALGOS:
        pytest.skip(f"algorithm {preset.algo!r} is not registered yet")
    try:
        config_cls = ALGOS[preset.algo].Config
    except ImportError as e:   # an optional dependency of that agent
        pytest.skip(f"{preset.algo} cannot be imported: {e}")
    fields = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(preset.overrides) - fields)
    assert not unknown, f"{preset.algo}/{preset.env}: unknown config fields {unknown}"
    config = config_cls(**preset.overrides)
    for k, v in preset.overrides.items():
        assert getattr(config, k) == v


def test_on_policy_rows_cover_the_issue_environments():
    for env in ISSUE_ENVS:
        assert find("ppo", env) is not None, env
    for env in ISSUE_ENVS:
        if env != "InvertedPendulum-v5":   # the zoo has no A2C InvertedPendulum row
            assert find("a2c", env) is not None, env


def test_presets_mapping_is_the_table_and_importable_from_algos():
    assert PRESETS == {(p.algo, p.env): p.overrides for p in TABLE}
    assert PRESETS[("ppo", "CartPole-v1")]["num_steps"] == 32
    cfg = overrides_for("ppo", "CartPole-v1")
    cfg["lr"] = 0.0                      # a copy: the table is not changed
    assert PRESETS[("ppo", "CartPole-v1")]["lr"] == 1e-3
    assert overrides_for("ppo", "NoSuchEnv-v0") == {}


def test_describe_says_whether_a_preset_applies_and_where_from():
    line = describe("ppo", "LunarLander-v3")
    assert line.startswith("preset: ppo on LunarLander-v3 from RL-Baselines3-Zoo")
    assert "hyperparams/ppo.yml" in line and "\n" not in line
    assert "general defaults" in describe("ppo", "FrozenLake-v1")


def test_published_results_have_a_row():
    for key in RL_ZOO_RESULTS:
        assert key in PRESETS, key


def test_ortho_init_false_is_pytorchs_default_uniform():
    import numpy as np
    from gymnasium import spaces

    from minirl.algos.base import ActorCriticNet

    box = spaces.Box(-1, 1, (2,))
    net = ActorCriticNet(16, box, (64,), dtype=np.float64, ortho_init=False, log_std_init=-2.0)
    params = net.init(np.random.default_rng(0))
    w = net.actor.views(params[net.actor_slice])["0.weight"]
    assert np.abs(w).max() <= 1 / np.sqrt(16) and np.abs(w).max() > 0.9 / np.sqrt(16)
    np.testing.assert_allclose(w.std(), 1 / np.sqrt(3 * 16), rtol=0.1)
    np.testing.assert_array_equal(params[net.log_std_slice], [-2.0, -2.0])
    ortho = ActorCriticNet(16, box, (64,), dtype=np.float64).init(np.random.default_rng(0))
    assert not np.allclose(ortho, params)
