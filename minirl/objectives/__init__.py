"""Objectives: estimators, surrogate losses and targets, as pure functions.

Every loss returns ``(value, gradient w.r.t. what the network emitted)`` -- ``dlogp`` for
score-function and ratio-based surrogates, ``dlogits`` for exact categorical KL terms -- so an
agent only calls ``dist.log_prob_backward(a, dlogp)`` and its network's backward.

- ``policy_gradient``: REINFORCE-family per-step weights (full return, reward-to-go, baselines,
  advantages, five importance-sampling forms), their assembly into a gradient estimate, and
  the pseudo-loss ``policy_gradient_loss(logp, weights) -> (loss, dlogp)``.
- ``ppo``: PPO clipped (and clipped-ratio "Trick #1") and KL-penalized surrogates
  ``(loss, dlogp)``, approx-KL and clip-fraction diagnostics, the adaptive-beta rule.
- ``kl``: the KL between new and old policy in both directions, exact per state for
  categorical policies ``(kl, dlogits)`` or from sampled actions ``(kl, dlogp)``.

All of them are proven on finite MDPs against exact oracles in ``minirl.mdp``
(see ``docs/estimators.md``).
"""
