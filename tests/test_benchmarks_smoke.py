"""The benchmark peers compute what minirl computes, and the start-up benchmark finds its kernels.

Each peer adapter in ``benchmarks/peers.py`` is checked against a plain NumPy loop written from
the definition, on an episode-free rollout and on one with terminations and truncations (where
``next_values`` at an episode end differs from the next row, so a wrong bootstrap shows). The
peers are optional: each test is skipped when its library is not installed
(``python3 tasks.py bench --peers`` installs them).
"""
import numpy as np
import pytest

from benchmarks import bench_startup, peers

GAMMA, LAM = 0.99, 0.95


def gae_numpy(rewards, values, next_values, terminated, truncated, gamma, lam):
    """A_t = delta_t + gamma*lam*(1 - done_t)*A_{t+1}; delta_t = r_t + gamma*(1-term_t)*V'_t - V_t.

    done_t = terminated_t | truncated_t, and the sum also stops at the last row.
    """
    T, N = rewards.shape
    adv = np.zeros((T, N))
    for e in range(N):
        a = 0.0
        for t in reversed(range(T)):
            bootstrap = 0.0 if terminated[t, e] else gamma * next_values[t, e]
            delta = rewards[t, e] + bootstrap - values[t, e]
            stop = terminated[t, e] or truncated[t, e] or t == T - 1
            a = delta + (0.0 if stop else gamma * lam * a)
            adv[t, e] = a
    return adv


def nstep_numpy(rewards, next_values, terminated, truncated, gamma, n):
    """G_t = sum_{i<k} gamma^i r_{t+i} + gamma^k (1 - term_{t+k-1}) V'_{t+k-1}; k stops at ends."""
    T, N = rewards.shape
    out = np.zeros((T, N))
    for e in range(N):
        for t in range(T):
            g = 0.0
            for k in range(n):
                s = t + k
                g += gamma**k * rewards[s, e]
                if terminated[s, e]:
                    break
                if truncated[s, e] or s == T - 1 or k == n - 1:
                    g += gamma ** (k + 1) * next_values[s, e]
                    break
            out[t, e] = g
    return out


@pytest.fixture(params=["episode-free", "with-ends"])
def rollout(request):
    rng = np.random.default_rng(7)
    T, N = 40, 3
    v = rng.standard_normal((T + 1, N))
    rewards, values, next_values = rng.standard_normal((T, N)), v[:-1], v[1:].copy()
    terminated = np.zeros((T, N), bool)
    truncated = np.zeros((T, N), bool)
    if request.param == "with-ends":
        terminated[[5, 17, 30], [0, 1, 2]] = True
        truncated[[9, 22, T - 1, 30], [1, 0, 2, 2]] = True  # step 30: both flags at once
        ends = terminated | truncated
        next_values[ends] = rng.standard_normal(ends.sum())  # V(pre-reset obs) != next row
    return rewards, values, next_values, terminated, truncated


def test_sb3_gae_matches_numpy(rollout):
    pytest.importorskip("stable_baselines3")
    fn = peers.sb3_gae(*rollout, GAMMA, LAM)
    fn()  # the timed callable runs
    # SB3 stores float32; with its truncation reward patch it equals minirl's GAE.
    np.testing.assert_allclose(fn.as_minirl(), gae_numpy(*rollout, GAMMA, LAM),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("variant", ["tianshou kernel", "tianshou public"])
def test_tianshou_gae_matches_numpy(rollout, variant):
    pytest.importorskip("tianshou")
    fns = peers.tianshou_gae(*rollout, GAMMA, LAM)
    assert fns is not None and variant in fns
    fns[variant]()
    np.testing.assert_allclose(fns[variant].as_minirl(), gae_numpy(*rollout, GAMMA, LAM),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n", [1, 3, 50])
def test_tianshou_nstep_matches_numpy(rollout, n):
    pytest.importorskip("tianshou")
    rewards, _, next_values, terminated, truncated = rollout
    fn = peers.tianshou_nstep(rewards, next_values, terminated, truncated, GAMMA, n)
    fn()
    np.testing.assert_allclose(
        fn.as_minirl(), nstep_numpy(rewards, next_values, terminated, truncated, GAMMA, n),
        rtol=1e-12, atol=1e-12)


def test_cpprb_samples():
    pytest.importorskip("cpprb")
    batch = peers.cpprb_uniform_sample(buffer_size=1000, obs_dim=3, batch_size=32)()
    assert batch["obs"].shape == (32, 3) and batch["next_obs"].shape == (32, 3)
    assert batch["rew"].shape[0] == 32 and batch["done"].shape[0] == 32
    sample, update = peers.cpprb_prioritized(buffer_size=1000, obs_dim=3, batch_size=32)
    update()
    batch = sample()
    assert batch["indexes"].shape == (32,) and np.all(batch["weights"] <= 1.0 + 1e-6)


@pytest.mark.parametrize("stratified", [False, True])
def test_tianshou_segment_tree_draws_in_proportion(stratified):
    pytest.importorskip("tianshou")
    capacity, batch = 5, 4000
    sample, update = peers.tianshou_segment_tree_sample(capacity, batch, stratified=stratified)
    tree = sample.tree
    p = np.array([tree[i] for i in range(capacity)])
    freq = np.bincount(sample(), minlength=capacity) / batch
    np.testing.assert_allclose(freq, p / p.sum(), atol=0.03)
    update()
    p = np.array([tree[i] for i in range(capacity)])
    assert tree.reduce() == pytest.approx(p.sum())


def test_peers_missing_library_gives_none(monkeypatch):
    monkeypatch.setattr(peers, "optional_import", lambda name: None)
    x = np.zeros((4, 2))
    f = np.zeros((4, 2), bool)
    assert peers.sb3_gae(x, x, x, f, f, GAMMA, LAM) is None
    assert peers.tianshou_gae(x, x, x, f, f, GAMMA, LAM) is None
    assert peers.tianshou_nstep(x, x, f, f, GAMMA, 3) is None
    assert peers.cpprb_uniform_sample(10, 2, 4) is None
    assert peers.tianshou_segment_tree_sample(10, 4) is None
    assert peers.torch_available() is False


def test_startup_discovers_public_kernels():
    found = bench_startup.discover()
    assert set(found) == set(bench_startup.MODULES)
    # "all kernels" means every kernels/<topic>.py (qstep and optim were once left out)
    topics = {p.stem for p in (bench_startup.ROOT / "kernels").glob("*.py")
              if not p.stem.startswith("_")}
    assert set(bench_startup.MODULES) == topics and {"qstep", "optim"} <= topics
    assert found["qstep"] == ["q_step", "q_steps", "q_values"]
    assert all(f"qstep.{name}" in bench_startup.CALLS for name in found["qstep"])
    for module, names in found.items():
        for name in names or []:
            assert not name.startswith("_") and not name.endswith(("_reference", "_numpy"))


# minirl's kernels and the peers they are benchmarked against compute the same numbers, so the
# timings in bench_gae / bench_nstep / bench_replay compare like with like.

def test_minirl_gae_equals_peers(rollout):
    gae = pytest.importorskip("kernels.gae").gae
    pytest.importorskip("tianshou")
    pytest.importorskip("stable_baselines3")
    adv, _ = gae(*rollout, GAMMA, LAM)
    np.testing.assert_allclose(peers.tianshou_gae_kernel(*rollout, GAMMA, LAM).as_minirl(), adv,
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(peers.sb3_gae(*rollout, GAMMA, LAM).as_minirl(), adv,
                               rtol=1e-5, atol=1e-5)


def test_minirl_nstep_equals_tianshou(rollout):
    nstep_targets = pytest.importorskip("kernels.nstep").nstep_targets
    pytest.importorskip("tianshou")
    rewards, _, next_values, terminated, truncated = rollout
    for n in (1, 3, 50):
        np.testing.assert_allclose(
            peers.tianshou_nstep(rewards, next_values, terminated, truncated, GAMMA, n).as_minirl(),
            nstep_targets(rewards, next_values, terminated, truncated, GAMMA, n),
            rtol=1e-12, atol=1e-12)


def test_minirl_sum_tree_finds_what_tianshou_finds():
    SumTree = pytest.importorskip("kernels.replay").SumTree
    pytest.importorskip("tianshou")
    capacity = 100
    sample, _ = peers.tianshou_segment_tree_sample(capacity, 8)
    p = np.array([sample.tree[i] for i in range(capacity)])
    tree = SumTree(capacity)
    tree.update(np.arange(capacity), p)
    u = np.random.default_rng(3).random(1000) * min(tree.total, sample.tree.reduce()) * 0.999
    # Tianshou: smallest i with u <= cumsum_i; minirl: smallest i with u < cumsum_i (equal
    # except when u hits a prefix sum exactly, which random u does not).
    np.testing.assert_array_equal(tree.find(u)[0], sample.tree.get_prefix_sum_idx(u.copy()))
