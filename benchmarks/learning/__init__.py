"""Seeded learning benchmarks (slow; not part of the test run): ``python -m benchmarks.learning``.

Each benchmark trains one agent configuration on one environment for a fixed step budget with
several seeds, single-threaded, and records per seed: the first env step and wall time at which
the mean return of the last 100 episodes reached the threshold, the final such mean, wall
time, CPU time and env steps per second. Results go to ``benchmarks/results/learning_<name>.csv``
(one row per seed) and the combined table ``benchmarks/results/learning.md``.

| name                | agent and config                         | budget | threshold | seeds needed |
|---------------------|------------------------------------------|--------|-----------|--------------|
| ppo-cartpole        | PPO clip, PPOConfig() (RL-Zoo CartPole)  | 100k   | 475       | 4 of 5       |
| ppo-kl-cartpole     | PPO adaptive KL, loss="kl"               | 200k   | 475       | 4 of 5       |
| a2c-cartpole        | A2C, A2CConfig()                         | 500k   | 475       | 3 of 5       |
| reinforce-cartpole  | REINFORCE, learned baseline              | 500k   | 450       | 3 of 5       |
| ppo-pendulum        | PPO, PRESETS[("ppo", "Pendulum-v1")]     | 500k   | -250      | 3 of 5       |
| sb3-ppo-cartpole    | Stable-Baselines3 PPO, same settings as  | 100k   | 475       | (reference)  |
|                     | ppo-cartpole (torch, one thread)         |        |           |              |
"""
