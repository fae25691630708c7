"""Independent ARS V1 on Swimmer-v5 (no minirl code): the cross-check of
``benchmarks/results/learning_gradient_free_notes.md`` (section "Swimmer").

    python benchmarks/learning/ars_independent.py SEED EPISODES [clip] [bias]

Mania, Guy & Recht 2018 (arXiv:1803.07055), Algorithm 1, the paper's Swimmer settings
(alpha 0.02, nu 0.01, N = b = 1, H = 1000), a linear policy a = M s (``bias``: a = M [s; 1];
``clip``: actions clipped to [-1, 1] as minirl sends them); the env is seeded once per run as
in the paper's workers. Prints the unperturbed policy's mean return over 3 episodes after every
50 training episodes, then the first crossing of 325 and the final mean over 10 episodes. The
code below is the script the notes' table was produced with (before it was committed as this
file), unchanged.
"""
# ars.py: independent ARS V1 (Mania, Guy & Recht 2018, Algorithm 1), linear policy, no minirl
import sys, numpy as np, gymnasium as gym
seed, episodes = int(sys.argv[1]), int(sys.argv[2])
alpha, nu, N, b, H = 0.02, 0.01, 1, 1, 1000
opts = sys.argv[3:]; clip = "clip" in opts; bias = "bias" in opts
env = gym.make("Swimmer-v5"); env.reset(seed=seed)   # seeded once, like the paper's workers
rng = np.random.default_rng(seed)
M = np.zeros((env.action_space.shape[0], env.observation_space.shape[0] + bias))
def rollout(W):
    obs, _ = env.reset(); tot = 0.0
    for _ in range(H):
        a = W @ (np.append(obs, 1.0) if bias else obs)
        if clip: a = np.clip(a, -1, 1)
        obs, r, term, trunc, _ = env.step(a); tot += r
        if term or trunc: break
    return tot
used, first = 0, None
while used < episodes:
    d = rng.standard_normal((N,) + M.shape)
    rp = np.array([rollout(M + nu * di) for di in d]); rn = np.array([rollout(M - nu * di) for di in d])
    used += 2 * N
    top = np.argsort(-np.maximum(rp, rn))[:b]
    sr = np.concatenate([rp[top], rn[top]]).std()
    M = M + alpha / (b * sr) * np.tensordot(rp[top] - rn[top], d[top], 1)
    if used % 50 == 0:
        ev = np.mean([rollout(M) for _ in range(3)])
        print(used, round(ev, 1), flush=True)
        if ev >= 325 and first is None: first = used
print("seed", seed, "first", first, "final", round(np.mean([rollout(M) for _ in range(10)]), 1))
