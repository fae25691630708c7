"""DQN's update, steps 2b-2c of ``minirl.algos.dqn`` (Stanford CS224R, "Q-Learning: DQN
pseudocode (Algorithm 1)"): targets from the target network, the TD loss, the gradient through
the Q-network, global-norm clipping and the Adam step, on one batch or on K batches in a row.

    y_i   = G_i + d_i Q_theta'(s'_i, argmax_a' Q_(theta' or theta)(s'_i, a'))
    theta <- Adam step on clip(grad_theta 1/B sum_i w_i h(Q_theta(s_i, a_i) - y_i))

Two paths give the same numbers: the network layer (``QNet``: ``minirl.nn`` forward and
backward, ``td_loss``, ``clip_grad_norm``, ``Adam.step``), and for a single ReLU Q-network the
fused Numba step (``kernels.qstep``), which does the same operations in the same order and
dtype in one call per update, or one call per K updates (``q_steps``). With one BLAS thread
they agree bit for bit (tests: ``tests/minirl/algos/test_dqn.py``).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from kernels.qstep import q_step, q_steps
from minirl.nn import Adam, AdamState, clip_grad_norm
from minirl.nn.losses import mean_f64
from minirl.nn.qnet import QNet
from minirl.objectives.q_learning import q_targets, td_loss

__all__ = ["dqn_targets", "dqn_gradient_step", "dqn_gradient_steps"]


def dqn_targets(qnet: QNet, params, target_params, obs_next, returns, discounts,
                cfg) -> np.ndarray:
    """Step 2b: ``y [B]`` from the target net (double DQN: argmax by the online net)."""
    q_next = qnet.forward(target_params, obs_next, "next")[0]
    online = qnet.forward(params, obs_next, "act")[0] if cfg.double else None
    return q_targets(returns, discounts, q_next if qnet.K > 1 else q_next[0],
                     None if online is None else (online if qnet.K > 1 else online[0]),
                     cfg.ensemble_reduction)


def _returns_discounts(batch, cfg):
    """(G, d) of a batch: the n-step buffer's, or 1-step r and gamma (1 - terminated)
    (terminated stops the bootstrap, truncated keeps it)."""
    if hasattr(batch, "discounts"):
        return batch.returns, batch.discounts
    return batch.rewards, cfg.gamma * (~batch.terminated)


def dqn_gradient_step(qnet: QNet, params, target_params, opt_state, adam: Adam, batch,
                      cfg, grad_buf: np.ndarray, out=None):
    """Steps 2b-2c on one batch (``Transitions`` or ``NStepTransitions``; ``cfg`` a
    ``DQNConfig``).

    Returns ``(params, opt_state, stats, td_errors [B])``; stats: loss, mean Q(s, a), the
    pre-clip gradient norm. ``out``: optional (params, m, v) arrays nobody else holds, which
    the fused step writes the new vectors into (``minirl.nn.optim.reusable``).
    """
    returns, discounts = _returns_discounts(batch, cfg)
    weights = None if not cfg.prioritized else batch.weights
    fused = None
    if cfg.fused and qnet.fusable:   # the same arithmetic in one call (None: corner cases)
        fused = q_step(params, target_params, opt_state.m, opt_state.v, qnet.sizes,
                       batch.obs, batch.actions, returns, discounts, batch.next_obs,
                       None if weights is None else weights.astype(qnet.dtype, copy=False),
                       cfg.double, cfg.loss == "huber", cfg.huber_delta, cfg.max_grad_norm,
                       adam.coefficients(opt_state, qnet.dtype), out=out)
    if fused is not None:
        params, m, v, grad_norm, y, td, per = fused
        opt_state, loss = AdamState(opt_state.step + 1, m, v), mean_f64(per)
    else:
        y = dqn_targets(qnet, params, target_params, batch.next_obs, returns, discounts, cfg)
        q, caches = qnet.forward(params, batch.obs, "train")
        q = q[0] if qnet.K == 1 else q                  # [B, A] or [K, B, A]
        loss, dq, td = td_loss(q, batch.actions, y, cfg.loss, cfg.huber_delta, weights)
        grad = qnet.backward(params, caches, dq[None] if qnet.K == 1 else dq, grad_buf)
        grad, grad_norm = clip_grad_norm(grad, cfg.max_grad_norm)
        params, opt_state = adam.step(params, grad, opt_state)
    q_mean = mean_f64(td.astype(np.float64) + y)       # mean Q(s_i, a_i) over heads (float64)
    return params, opt_state, (loss, q_mean, grad_norm), td


def _row_means(terms: np.ndarray) -> np.ndarray:
    """``mean_f64`` of each row of ``terms [K, B]`` float64 (NumPy sums a row along the
    contiguous axis exactly as it sums the row alone; a non-finite sum: ``mean_f64`` itself,
    which rescales; silent like it)."""
    with np.errstate(over="ignore", invalid="ignore"):
        means = terms.sum(axis=1) / terms.shape[1]
    for k in np.flatnonzero(~np.isfinite(means)):
        means[k] = mean_f64(terms[k])
    return means


def dqn_gradient_steps(qnet: QNet, params, target_params, opt_state, adam: Adam, batches,
                       cfg, grad_buf: np.ndarray, progress=None):
    """Steps 2b-2c on K batches in a row (``batches``: fields ``[K, B, ...]``, e.g.
    ``ReplayBuffer.sample(B, rng, batches=K)``; no prioritized replay: its priorities change
    between updates): bit for bit K :func:`dqn_gradient_step` calls, the fused kernel running
    all K updates in one call (``kernels.qstep.q_steps``; the layer path for a step it hands
    back).

    ``progress(params, opt_state)`` (optional) is called with the state after the updates
    done so far right before an update that may raise (one the kernel hands back to the layer
    path, which raises the named error): a caller that keeps it holds, after the error, what
    K :func:`dqn_gradient_step` calls in a row would have left.

    Returns ``(params, opt_state, stats [K, 3] float64)`` (each row a step's loss, mean
    Q(s, a) and pre-clip gradient norm), or None, nothing done, when the fused kernel cannot
    run these arguments (not a fusable Q-network, read-only arrays, an lr whose step size
    overflows the dtype at one of the K updates): then call :func:`dqn_gradient_step` per
    batch (which raises that error at that update).
    """
    if not (cfg.fused and qnet.fusable) or cfg.prioritized:
        return None
    returns, discounts = _returns_discounts(batches, cfg)
    K = returns.shape[0]
    try:
        coefs = adam.coefficient_rows(opt_state, qnet.dtype, K)
    except ValueError:    # raised again by the per-batch path, after the updates before it
        return None
    careful_stats = {}
    layer_cfg = dataclasses.replace(cfg, fused=False)

    def careful(k, p, m, v):          # the layer path for batch k (named errors, corners)
        state = AdamState(opt_state.step + k, m, v)
        if progress is not None:   # copies: the kernel may write p, m, v again after this step
            progress(p.copy(), AdamState(state.step, m.copy(), v.copy()))
        one = type(batches)(*(field[k] for field in batches))
        p, st, careful_stats[k], _ = dqn_gradient_step(qnet, p, target_params, state, adam,
                                                       one, layer_cfg, grad_buf)
        return p, st.m, st.v

    run = q_steps(params, target_params, opt_state.m, opt_state.v, qnet.sizes, batches.obs,
                  batches.actions, returns, discounts, batches.next_obs, cfg.double,
                  cfg.loss == "huber", cfg.huber_delta, cfg.max_grad_norm, coefs, careful)
    if run is None:
        return None
    params, m, v, norms, y, td, per, careful_steps = run
    stats = np.stack([_row_means(per), _row_means(td.astype(np.float64) + y), norms], axis=1)
    for k in careful_steps:
        stats[k] = careful_stats[k]
    return params, AdamState(opt_state.step + K, m, v), stats
