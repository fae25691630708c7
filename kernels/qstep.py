"""Fused DQN gradient step for a ReLU MLP Q-network: targets, TD loss, backward, gradient
clipping and Adam in one Numba call instead of ~a hundred NumPy calls.

For a batch of B transitions ``(s_i, a_i, G_i, d_i, s'_i)`` and PER weights ``w_i`` (1 without
PER), with ``Q`` the online network (parameters theta) and ``Q'`` the target network::

    a*_i = argmax_a Q'(s'_i, a)    (double DQN: argmax_a Q(s'_i, a), first index on ties)
    y_i  = G_i + d_i Q'(s'_i, a*_i)                       (no gradient: semi-gradient target)
    r_i  = Q(s_i, a_i) - y_i                              (the TD error)
    L    = 1/B sum_i w_i h(r_i),   h = Huber_delta or r^2
    dL/dQ(s_i, a_i) = w_i clip(r_i, -delta, delta) / B    (Huber)   or   2/B w_i r_i   (MSE)
    g    = dL/dtheta by the MLP's backward pass (Linear: dW = x^T dy, db = sum_B dy,
           dx = dy W^T; ReLU: dx = dy [y > 0])
    g    <- g * max_norm / ||g||   if ||g|| > max_norm
    theta, m, v <- Adam(theta, g, m, v)                   (``kernels.optim``'s kernel)

The network is ``sizes[0] -> sizes[1] -> ... -> sizes[-1]`` with ReLU between the Linear
layers and a linear output, parameters in one flat vector laid out as ``minirl.nn.MLP`` lays
them out (per layer ``W [in, out]`` then ``b [out]``). Every operation is the one the NumPy
layer code does, in the same order and dtype, and the matrix products run the same OpenBLAS
kernels, so with one BLAS thread (how minirl's tests and benchmarks run) the result is bit for
bit ``q_step_reference``'s and minirl's DQN step through its network layer (the tests check
it). With several BLAS threads, NumPy's and SciPy's OpenBLAS builds (Numba calls the latter) may
split a product differently: the two paths then agree to the last bits, not bit for bit.

Three implementations:

* ``q_step_reference`` - plain NumPy, the equations above (the definition).
* ``_q_step_kernel`` - one Numba call; returns a status instead of raising.
* ``q_step`` - the wrapper: validates shapes and dtypes and returns ``None`` when the step
  needs the careful path (a non-finite target, Q-value, TD error or gradient, a gradient
  norm of 0, or a second moment that overflows): the caller then runs its NumPy path, which
  raises the named error or handles the corner exactly. Nothing is modified in that case.

and for K updates in a row on K batches drawn beforehand (DQN without prioritized replay:
an iteration's ``gradient_steps``), ``q_steps_reference`` / ``_q_steps_kernel`` / ``q_steps``:
the same step K times in one call, bit for bit K ``q_step`` calls, a step it hands back run by
the caller's careful path in between; this saves the ~50 us of Python around each call.

Lecture: Stanford CS224R, "Q-Learning: DQN pseudocode (Algorithm 1)", "Double Q-learning in
practice", "Practical Implementation Details: Dealing with TD Gradients" (Huber loss,
gradient clipping). Papers: Mnih et al. (2015), Nature 518; van Hasselt et al. (2016),
arXiv:1509.06461; Kingma & Ba (2015), arXiv:1412.6980.
"""
from __future__ import annotations

import numba
import numpy as np

from kernels.optim import _EXPONENT, _adam_kernel, _count_non_finite, adam_reference_step

__all__ = ["q_step", "q_step_reference", "q_steps", "q_steps_reference", "q_values",
           "q_values_reference", "fusable_sizes"]


def fusable_sizes(sizes) -> bool:
    """Whether a network of these layer widths runs fused: at least one Linear layer and every
    width >= 2 (a width-1 layer makes NumPy reduce along a contiguous axis, pairwise, which
    the kernel's row-by-row sums do not reproduce bit for bit)."""
    sizes = list(sizes)
    return len(sizes) >= 2 and all(int(s) >= 2 for s in sizes)


# ----------------------------------------------------------------------------- reference
def _forward_ref(params, sizes, x):
    """ReLU MLP forward; returns the list of layer outputs (post-ReLU hidden, linear last)."""
    outs, h, off = [], x, 0
    for l in range(len(sizes) - 1):
        i, o = sizes[l], sizes[l + 1]
        W = params[off:off + i * o].reshape(i, o)
        b = params[off + i * o:off + i * o + o]
        off += i * o + o
        h = h @ W + b
        if l < len(sizes) - 2:
            h = np.maximum(h, 0)
        outs.append(h)
    return outs


def q_step_reference(params, target_params, m, v, sizes, obs, actions, returns, discounts,
                     next_obs, weights, double, huber, delta, max_norm, coef):
    """Plain NumPy. Returns ``(new_params, new_m, new_v, grad_norm, y [B], td [B],
    per [B] float64)`` (``per``: the per-sample loss terms w_i h(r_i) in float64, whose mean
    is the loss value), or ``None`` where ``q_step`` returns ``None``. ``coef``: the nine
    Adam coefficients of ``kernels.optim.checked_coefficients``."""
    dt = params.dtype
    B = obs.shape[0]
    with np.errstate(all="ignore"):
        if not (np.isfinite(returns).all() and np.isfinite(discounts).all()):
            return None
        q_next = _forward_ref(target_params, sizes, next_obs)[-1]
        if not np.isfinite(q_next).all():
            return None
        if double:
            q_on = _forward_ref(params, sizes, next_obs)[-1]
            if not np.isfinite(q_on).all():
                return None
            best = q_next[np.arange(B), np.argmax(q_on, axis=1)]
        else:
            best = q_next.max(axis=1)
        y = (returns + discounts * best).astype(dt)
        outs = _forward_ref(params, sizes, obs)
        pred = outs[-1][np.arange(B), actions]
        r = pred - y
        if not (np.isfinite(pred).all() and np.isfinite(r).all()):
            return None
        n = max(B, 1)
        if huber:
            r64 = pred.astype(np.float64) - y
            a = np.abs(r64)
            per = np.where(a <= delta, 0.5 * r64 * r64, delta * (a - 0.5 * delta))
            dpred = np.clip(r, dt.type(-delta), dt.type(delta))
            if weights is not None:
                per = weights.astype(np.float64) * per
                dpred = weights * dpred
            dpred = dpred / dt.type(n)
        else:
            r64 = r.astype(np.float64)
            per = (r64 if weights is None else weights * r64) * r64
            dpred = dt.type(2.0 / n) * (r if weights is None else weights * r)
        dq = np.zeros_like(outs[-1])
        dq[np.arange(B), actions] = dpred
        grad = np.empty_like(params)
        offs, off = [], 0
        for l in range(len(sizes) - 1):
            offs.append(off)
            off += sizes[l] * sizes[l + 1] + sizes[l + 1]
        g = dq
        for l in range(len(sizes) - 2, -1, -1):
            i, o, off = sizes[l], sizes[l + 1], offs[l]
            x = obs if l == 0 else outs[l - 1]
            grad[off:off + i * o] = (x.T @ g).ravel()
            # db = 1^T dy: a BLAS gemv from 128 rows on, else NumPy's row-by-row reduction
            grad[off + i * o:off + i * o + o] = (np.matmul(np.ones(B, dt), g) if B >= 128
                                                 else np.add.reduce(g, axis=0))
            if l > 0:
                g = (g @ params[off:off + i * o].reshape(i, o).T) * (outs[l - 1] > 0)
        sq = float(np.dot(grad, grad))
        if not 0.0 < sq < np.inf:
            return None
        norm = float(np.sqrt(sq))
        if norm > max_norm:
            grad = grad * dt.type(max_norm / norm)
        new_p, new_m, new_v = adam_reference_step(params, grad, m, v, coef)
        if not np.isfinite(new_v).all():
            return None
    return new_p, new_m, new_v, norm, y, r, per


# ----------------------------------------------------------------------------- kernel
@numba.njit(cache=True)
def _forward(params, sizes, x, buf):
    """ReLU MLP forward into ``buf`` (layer outputs one after another, each [B, width]);
    returns the output layer's [B, sizes[-1]] view."""
    B = x.shape[0]
    L = sizes.shape[0] - 1
    off_p = 0
    off_b = 0
    h = x
    for l in range(L):
        i = sizes[l]
        o = sizes[l + 1]
        W = params[off_p:off_p + i * o].reshape((i, o))
        b = params[off_p + i * o:off_p + i * o + o]
        off_p += i * o + o
        y = buf[off_b:off_b + B * o].reshape((B, o))
        off_b += B * o
        np.dot(h, W, y)
        if l < L - 1:   # + b, then ReLU in the same pass: max(t, 0) as NumPy computes it
            for r in range(B):   # (NaN stays NaN, -0.0 becomes +0.0); a select, no branch
                for c in range(o):
                    t = y[r, c] + b[c]
                    y[r, c] = t if (t > 0) | (t != t) else 0.0
        else:
            for r in range(B):
                for c in range(o):
                    y[r, c] += b[c]
        h = y
    return h


@numba.njit(cache=True)
def _n_params(sizes):
    n = 0
    for l in range(sizes.shape[0] - 1):
        n += sizes[l] * sizes[l + 1] + sizes[l + 1]
    return n


@numba.njit(cache=True)
def _all_finite(a):
    for k in range(a.size):
        if not np.isfinite(a.flat[k]):
            return False
    return True


@numba.njit(cache=True)
def _q_step_kernel(params, target_params, m, v, sizes, obs, actions, returns, discounts,
                   next_obs, weights, use_weights, double, huber, delta, delta_t, n_t, two_n,
                   max_norm, b1, c1, b2, c2, bc2, e, step_size, l2, shrink,
                   out_p, out_m, out_v, v_bits, exponent, grad, y, td, per, work):
    """The step; returns ``(status, grad_norm)``: status 0 done, 1 use the careful path,
    2 the arguments do not fit together (the wrapper names which), 3 ``work`` is too small
    (``grad_norm`` then holds the size needed). ``work``: scratch reused across calls
    (allocating and first touching ~1 MB per step costs as much as the step's arithmetic)."""
    B = obs.shape[0]
    L = sizes.shape[0] - 1
    if L < 1:
        return 2, 0.0
    A = sizes[L]
    for l in range(L + 1):
        if sizes[l] < 2:
            return 2, 0.0
    n = _n_params(sizes)
    if B < 1 or obs.shape[1] != sizes[0] or next_obs.shape[0] != B \
            or next_obs.shape[1] != sizes[0] or actions.shape[0] != B \
            or returns.shape[0] != B or discounts.shape[0] != B \
            or (use_weights and weights.shape[0] != B):
        return 2, 0.0
    for a in (params, target_params, m, v, out_p, out_m, out_v, grad):
        if a.shape[0] != n:
            return 2, 0.0
    for i in range(B):
        if actions[i] < 0 or actions[i] >= A:
            return 2, 0.0
    for o in (out_p, out_m, out_v):   # destinations share no memory with the inputs
        lo, hi = o.ctypes.data, o.ctypes.data + o.nbytes   # or with each other
        for x in (params, target_params, m, v, grad):
            if lo < x.ctypes.data + x.nbytes and x.ctypes.data < hi:
                return 2, 0.0
    for o, x in ((out_p, out_m), (out_p, out_v), (out_m, out_v)):
        if o.ctypes.data < x.ctypes.data + x.nbytes and x.ctypes.data < o.ctypes.data + o.nbytes:
            return 2, 0.0
    need = _work_size(sizes, B)
    if work.shape[0] < need:
        return 3, float(need)
    return _step(params, target_params, m, v, sizes, obs, actions, returns, discounts,
                 next_obs, weights, use_weights, double, huber, delta, delta_t, n_t, two_n,
                 max_norm, b1, c1, b2, c2, bc2, e, step_size, l2, shrink, out_p, out_m, out_v,
                 v_bits, exponent, grad, y, td, per, work)


@numba.njit(cache=True)
def _work_size(sizes, B):
    """Scratch floats one step needs: [target fwd | online fwd on s' | train fwd | 2 dx | dq |
    ones]."""
    total = 0
    width = 0
    for l in range(sizes.shape[0]):
        width = max(width, sizes[l])
        if l > 0:
            total += sizes[l]
    return 3 * B * total + 2 * B * width + B * sizes[sizes.shape[0] - 1] + B


@numba.njit(cache=True)
def _step(params, target_params, m, v, sizes, obs, actions, returns, discounts, next_obs,
          weights, use_weights, double, huber, delta, delta_t, n_t, two_n, max_norm, b1, c1,
          b2, c2, bc2, e, step_size, l2, shrink, out_p, out_m, out_v, v_bits, exponent, grad,
          y, td, per, work):
    """One step on arguments already checked to fit together (``_q_step_kernel``); returns
    ``(0, grad_norm)`` or ``(1, 0.0)``: use the careful path, nothing written to the outputs
    that the caller keeps."""
    B = obs.shape[0]
    L = sizes.shape[0] - 1
    A = sizes[L]
    total = 0
    width = 0
    for l in range(L + 1):
        width = max(width, sizes[l])
        if l > 0:
            total += sizes[l]
    nb = B * total
    gb = 3 * nb
    qb = gb + 2 * B * width
    ob = qb + B * A
    for i in range(B):
        if not (np.isfinite(returns[i]) and np.isfinite(discounts[i])):
            return 1, 0.0
    # targets y_i = G_i + d_i Q'(s'_i, a*_i)
    q_next = _forward(target_params, sizes, next_obs, work[0:nb])
    if not _all_finite(q_next):
        return 1, 0.0
    q_on = q_next
    if double:
        q_on = _forward(params, sizes, next_obs, work[nb:2 * nb])
        if not _all_finite(q_on):
            return 1, 0.0
    for i in range(B):
        if double:
            k = 0
            for a in range(1, A):
                if q_on[i, a] > q_on[i, k]:
                    k = a
            best = q_next[i, k]
        else:
            best = q_next[i, 0]
            for a in range(1, A):
                if q_next[i, a] > best:
                    best = q_next[i, a]
        y[i] = returns[i] + discounts[i] * best
    # online forward, TD errors, per-sample loss terms and dL/dQ
    buf = work[2 * nb:3 * nb]
    q = _forward(params, sizes, obs, buf)
    dq = work[qb:qb + B * A].reshape((B, A))
    dq[:] = 0.0
    for i in range(B):
        pred = q[i, actions[i]]
        r = pred - y[i]
        if not (np.isfinite(pred) and np.isfinite(r)):
            return 1, 0.0
        td[i] = r
        if huber:
            r64 = np.float64(pred) - np.float64(y[i])
            a64 = abs(r64)
            t = 0.5 * r64 * r64 if a64 <= delta else delta * (a64 - 0.5 * delta)
            g = min(max(r, -delta_t), delta_t)
            if use_weights:
                t = np.float64(weights[i]) * t
                g = weights[i] * g
            per[i] = t
            dq[i, actions[i]] = g / n_t
        else:
            r64 = np.float64(r)
            per[i] = ((weights[i] * r64) if use_weights else r64) * r64
            dq[i, actions[i]] = two_n * ((weights[i] * r) if use_weights else r)
    # backward, last layer first
    gbuf = work[gb:gb + 2 * B * width]
    g = dq
    off_p = 0
    for l in range(L):
        off_p += sizes[l] * sizes[l + 1] + sizes[l + 1]
    off_b = B * total
    for l in range(L - 1, -1, -1):
        i_ = sizes[l]
        o = sizes[l + 1]
        off_p -= i_ * o + o
        off_b -= B * o
        if l == 0:
            x = obs
        else:
            x = buf[off_b - B * i_:off_b].reshape((B, i_))
        dW = grad[off_p:off_p + i_ * o].reshape((i_, o))
        db = grad[off_p + i_ * o:off_p + i_ * o + o]
        if B == 1:
            for a in range(i_):
                for c in range(o):
                    dW[a, c] = x[0, a] * g[0, c]
        else:
            np.dot(x.T, g, dW)
        if B >= 128:
            ones = work[ob:ob + B]
            ones[:] = 1.0
            np.dot(ones, g, db)
        else:
            for c in range(o):
                db[c] = g[0, c]
            for r in range(1, B):
                for c in range(o):
                    db[c] += g[r, c]
        if l > 0:
            half = (L - l) % 2
            dx = gbuf[half * B * width:half * B * width + B * i_].reshape((B, i_))
            W = params[off_p:off_p + i_ * o].reshape((i_, o))
            np.dot(g, W.T, dx)
            for r in range(B):   # ReLU: dy * [y > 0] (a product, so -0.0 and NaN as NumPy)
                for c in range(i_):
                    dx[r, c] = dx[r, c] * (1.0 if x[r, c] > 0 else 0.0)
            g = dx
    # global-norm clipping
    sq = np.float64(np.dot(grad, grad))
    if not (0.0 < sq < np.inf):
        return 1, 0.0
    norm = np.sqrt(sq)
    if norm > max_norm:
        s = np.empty(1, grad.dtype)
        s[0] = max_norm / norm            # rounded once to the dtype, as NumPy rounds it
        scale = s[0]
        for k in range(grad.shape[0]):
            grad[k] = grad[k] * scale
    # Adam
    _adam_kernel(params, grad, m, v, b1, c1, b2, c2, bc2, e, step_size, l2, shrink,
                 out_p, out_m, out_v)
    if _count_non_finite(v_bits, exponent):
        return 1, 0.0
    return 0, norm


@numba.njit(cache=True)
def _q_steps_kernel(params, target_params, m, v, sizes, obs, actions, returns, discounts,
                    next_obs, double, huber, delta, delta_t, n_t, two_n, max_norm, coefs,
                    first, xp, xm, xv, x_bits, yp, ym, yv, y_bits, exponent, grad, y, td, per,
                    norms, work):
    """Steps ``first, first + 1, ..`` on the batches ``obs[k], actions[k], ..``: step
    ``first`` reads (params, m, v), each step writes its new vectors into set x or y in turn
    (x first) and the next step reads them. Returns the first step not done (``K`` when all
    were): that batch needs the careful path. Arguments are checked by ``q_steps``."""
    K = obs.shape[0]
    p, mm, vv = params, m, v
    for k in range(first, K):
        c = coefs[k]
        if (k - first) % 2 == 0:
            op, om, ov, bits = xp, xm, xv, x_bits
        else:
            op, om, ov, bits = yp, ym, yv, y_bits
        status, norm = _step(p, target_params, mm, vv, sizes, obs[k], actions[k], returns[k],
                             discounts[k], next_obs[k], y[k], False, double, huber, delta,
                             delta_t, n_t, two_n, max_norm, c[0], c[1], c[2], c[3], c[4], c[5],
                             c[6], c[7], c[8], op, om, ov, bits, exponent, grad, y[k], td[k],
                             per[k], work)
        if status != 0:
            return k
        norms[k] = norm
        p, mm, vv = op, om, ov
    return K


# ----------------------------------------------------------------------------- wrapper
_SCRATCH: dict = {}


def _scratch(dt, size: int, role: str) -> np.ndarray:
    """A reused private buffer (contents undefined): the kernel's gradient (one per length)
    and workspace (one per dtype, grown by the wrapper when the kernel asks). Calls hold
    the GIL (the kernel does not release it), so a buffer is never used by two calls at once."""
    key = (dt, role) if role == "work" else (dt, size, role)
    buf = _SCRATCH.get(key)
    if buf is None:
        if len(_SCRATCH) > 16:
            _SCRATCH.clear()
        buf = _SCRATCH[key] = np.empty(size, dt)
    return buf


def q_step(params, target_params, m, v, sizes, obs, actions, returns, discounts, next_obs,
           weights, double: bool, huber: bool, delta: float, max_norm: float, coef,
           grad_out=None, out=None):
    """One fused DQN gradient step (see the module docstring).

    Args:
        params, target_params, m, v: C-contiguous 1-D arrays of one float dtype, the flat
            layout of ``minirl.nn.MLP(sizes, ReLU)``; not modified.
        sizes: the layer widths ``[obs_dim, hidden..., A]`` (``fusable_sizes`` must hold).
        obs, next_obs: ``[B, obs_dim]`` C-contiguous, the params' dtype.
        actions: int64 ``[B]`` in [0, A).  returns, discounts: float32 or float64 ``[B]`` (
            the target is computed in their promoted dtype and rounded to the params' dtype,
            as NumPy does).  weights: ``[B]`` of the params' dtype, or None.
        double, huber: double DQN's argmax by the online net; Huber (else squared error).
        delta > 0, max_norm > 0: the Huber delta and the clipping norm.
        coef: the nine Adam coefficients (``kernels.optim.checked_coefficients``).
        grad_out: optional ``[n_params]`` array of the params' dtype that receives the
            clipped gradient (for finite-difference tests).
        out: optional ``(new_params, new_m, new_v)`` destinations (C-contiguous, the params'
            layout, no memory shared with the inputs); fresh arrays if None. A caller that
            recycles arrays nobody else holds avoids ~1 MB of page faults per step.

    Returns:
        ``(new_params, new_m, new_v, grad_norm, y, td, per)`` or ``None`` (use the careful
        path; nothing was modified).

    Raises:
        ValueError/TypeError naming the argument for mismatched shapes, dtypes or layouts.
    """
    dt, sizes = _common_checks(sizes, delta, max_norm, params=params,
                               target_params=target_params, m=m, v=v, obs=obs,
                               actions=actions, returns=returns, discounts=discounts,
                               next_obs=next_obs)
    if obs.ndim == 2 and obs.shape[0] == 0:
        raise ValueError("obs must hold at least one transition")
    if not all(a.flags.writeable for a in (params, target_params, m, v, obs, next_obs,
                                          actions, returns, discounts)) \
            or (weights is not None and not weights.flags.writeable):
        return None      # read-only inputs (a memory map, a shared store): the layer path
    # Only what the kernel's types need is checked here; shapes, action range and overlap
    # are checked inside it (status 2), and _validate then names the argument.
    for name, a, nd in (("params", params, 1), ("target_params", target_params, 1),
                        ("m", m, 1), ("v", v, 1), ("obs", obs, 2), ("next_obs", next_obs, 2)):
        if a.dtype != dt or a.ndim != nd or not a.flags.c_contiguous:
            _validate(params, target_params, m, v, sizes, obs, actions, returns, discounts,
                      next_obs, weights, grad_out, out)
    if actions.dtype != np.int64 or actions.ndim != 1 or returns.ndim != 1 \
            or discounts.ndim != 1 or returns.dtype not in _EXPONENT \
            or discounts.dtype not in _EXPONENT \
            or (weights is not None and (weights.dtype != dt or weights.ndim != 1)):
        _validate(params, target_params, m, v, sizes, obs, actions, returns, discounts,
                  next_obs, weights, grad_out, out)
    use_weights = weights is not None
    if out is None:
        out_p, out_m, out_v = np.empty_like(params), np.empty_like(params), np.empty_like(params)
    else:
        out_p, out_m, out_v = out
        for a in out:
            if a.dtype != dt or a.ndim != 1 or not a.flags.c_contiguous:
                _validate(params, target_params, m, v, sizes, obs, actions, returns,
                          discounts, next_obs, weights, grad_out, out)
    if grad_out is None:
        grad = _scratch(dt, params.shape[0], "grad")
    else:
        grad = grad_out
        if grad.dtype != dt or grad.ndim != 1 or not grad.flags.c_contiguous:
            _validate(params, target_params, m, v, sizes, obs, actions, returns, discounts,
                      next_obs, weights, grad_out, out)
    B = obs.shape[0]
    y, td, per = np.empty(B, dt), np.empty(B, dt), np.empty(B, np.float64)
    int_type, exponent = _EXPONENT[dt]
    f = dt.type
    args = (params, target_params, m, v, sizes, obs, actions, returns, discounts, next_obs,
            weights if use_weights else y, use_weights, bool(double), bool(huber),
            float(delta), f(delta), f(B), f(2.0 / B), float(max_norm), *coef, out_p, out_m,
            out_v, out_v.view(int_type), exponent, grad, y, td, per)
    status, norm = _q_step_kernel(*args, _scratch(dt, 0, "work"))
    if status == 3:                               # first call at this size: grow the scratch
        _SCRATCH[(np.dtype(dt), "work")] = np.empty(int(norm), dt)
        status, norm = _q_step_kernel(*args, _scratch(dt, 0, "work"))
    if status == 2:
        _validate(params, target_params, m, v, sizes, obs, actions, returns, discounts,
                  next_obs, weights, grad_out, out)
        raise ValueError("q_step: the arguments do not fit together")   # not reached
    if status:
        return None
    return out_p, out_m, out_v, float(norm), y, td, per


def q_steps(params, target_params, m, v, sizes, obs, actions, returns, discounts, next_obs,
            double: bool, huber: bool, delta: float, max_norm: float, coefs, careful):
    """K fused gradient steps in a row, one Numba call: bit for bit K calls of :func:`q_step`
    (batch k, Adam coefficients ``coefs[k]``), each step starting from the previous one's
    parameters and moments, with ``careful`` run for a step ``q_step`` would hand back.

    For a learner that draws its K batches before the K updates (DQN without prioritized
    replay: nothing changes the buffer meanwhile); saves the ~50 us of Python per step that
    K separate calls cost.

    Args:
        params, target_params, m, v, sizes, double, huber, delta, max_norm: as ``q_step``
            (not modified).
        obs, next_obs: ``[K, B, obs_dim]``; actions: int64 ``[K, B]``; returns, discounts:
            float ``[K, B]``; the batches, as ``q_step`` takes each.
        coefs: ``[K, 9]`` of the params' dtype: row k the Adam coefficients of step k
            (``kernels.optim.checked_coefficient_rows``).
        careful: ``careful(k, params, m, v) -> (params, m, v)``: the caller's careful path
            for batch k (it raises the named error, or returns new arrays).

    Returns:
        ``(params, m, v, norms [K] float64, y [K, B], td [K, B], per [K, B] float64,
        careful_steps)``: the vectors after step K-1 (new arrays, never the inputs), and per
        kernel step what ``q_step`` returns (rows of the steps in the list ``careful_steps``
        are left unset: their statistics are the careful path's); or ``None`` for read-only
        inputs (run the steps one by one).

    Raises:
        ValueError/TypeError naming the argument for mismatched shapes, dtypes or layouts.
    """
    dt, sizes = _common_checks(sizes, delta, max_norm, params=params,
                               target_params=target_params, m=m, v=v, obs=obs,
                               actions=actions, returns=returns, discounts=discounts,
                               next_obs=next_obs, coefs=coefs)
    for name, a, nd in (("obs", obs, 3), ("next_obs", next_obs, 3), ("actions", actions, 2),
                        ("returns", returns, 2), ("discounts", discounts, 2), ("coefs", coefs, 2)):
        if not isinstance(a, np.ndarray) or a.ndim != nd or a.shape[0] != obs.shape[0]:
            raise ValueError(f"{name} must be an array [K, ...] with the K={obs.shape[0]} "
                             f"batches of obs, got {getattr(a, 'shape', type(a).__name__)}")
    K = obs.shape[0]
    if K == 0 or obs.shape[1] == 0:
        raise ValueError("obs must hold at least one batch of at least one transition")
    if coefs.shape != (K, 9) or coefs.dtype != dt:
        raise ValueError(f"coefs must be {dt} [K={K}, 9], got {coefs.dtype}{coefs.shape}")
    # every batch checked as q_step checks one (shapes, dtypes, layouts, action range)
    _validate(params, target_params, m, v, sizes, obs[0], actions[0], returns[0],
              discounts[0], next_obs[0], None, None, None)
    for name, a in (("obs", obs), ("next_obs", next_obs), ("actions", actions),
                    ("returns", returns), ("discounts", discounts), ("coefs", coefs)):
        if not a.flags.c_contiguous:
            raise ValueError(f"{name} must be C-contiguous")
    if actions.shape != returns.shape or actions.shape != discounts.shape \
            or next_obs.shape != obs.shape or actions.shape != obs.shape[:2]:
        raise ValueError(f"obs {obs.shape}, next_obs {next_obs.shape}, actions "
                         f"{actions.shape}, returns {returns.shape} and discounts "
                         f"{discounts.shape} must hold the same [K, B] batches")
    if actions.min() < 0 or actions.max() >= sizes[-1]:
        raise ValueError(f"actions must be in [0, {sizes[-1]})")
    if not all(a.flags.writeable for a in (params, target_params, m, v, obs, next_obs,
                                          actions, returns, discounts, coefs)):
        return None      # read-only inputs: Numba types them apart; one q_step at a time
    B, n = obs.shape[1], params.shape[0]
    xs, ys = [np.empty_like(params) for _ in range(3)], [np.empty_like(params) for _ in range(3)]
    y, td = np.empty((K, B), dt), np.empty((K, B), dt)
    per, norms = np.empty((K, B), np.float64), np.empty(K, np.float64)
    int_type, exponent = _EXPONENT[dt]
    need = int(_work_size(sizes, B))
    work = _scratch(dt, 0, "work")
    if work.shape[0] < need:
        work = _SCRATCH[(np.dtype(dt), "work")] = np.empty(need, dt)
    f = dt.type
    p, mm, vv, first, careful_steps = params, m, v, 0, []
    while True:
        done = _q_steps_kernel(p, target_params, mm, vv, sizes, obs, actions, returns,
                               discounts, next_obs, bool(double), bool(huber), float(delta),
                               f(delta), f(B), f(2.0 / B), float(max_norm), coefs, first,
                               *xs, xs[2].view(int_type), *ys, ys[2].view(int_type), exponent,
                               _scratch(dt, n, "grad"), y, td, per, norms, work)
        if done > first:                               # the last step's set: x or y
            p, mm, vv = xs if (done - 1 - first) % 2 == 0 else ys
        if done == K:
            return p, mm, vv, norms, y, td, per, careful_steps
        p, mm, vv = careful(done, p, mm, vv)           # new arrays (never xs or ys)
        careful_steps.append(done)
        first = done + 1
        if first == K:
            return p, mm, vv, norms, y, td, per, careful_steps


def q_steps_reference(params, target_params, m, v, sizes, obs, actions, returns, discounts,
                      next_obs, double, huber, delta, max_norm, coefs, careful,
                      step=q_step_reference):
    """Plain NumPy: ``q_step_reference`` K times (``careful`` where it returns None); the
    same return value as :func:`q_steps`. ``step``: the one-update function (``q_step``
    checks the kernel against K calls of its single-step wrapper)."""
    K, B = actions.shape
    y, td = np.empty((K, B), params.dtype), np.empty((K, B), params.dtype)
    per, norms, careful_steps = np.empty((K, B)), np.empty(K), []
    for k in range(K):
        got = step(params, target_params, m, v, sizes, obs[k], actions[k], returns[k],
                   discounts[k], next_obs[k], None, double, huber, delta, max_norm,
                   tuple(coefs[k]))
        if got is None:
            params, m, v = careful(k, params, m, v)
            careful_steps.append(k)
            continue
        params, m, v, norms[k], y[k], td[k], per[k] = got
    return params, m, v, norms, y, td, per, careful_steps


def _common_checks(sizes, delta, max_norm, **arrays):
    """What ``q_step`` and ``q_steps`` check first: a TypeError naming the first argument
    that is not a NumPy array or float params, a ValueError for delta or max_norm; returns
    ``(params' dtype, sizes as int64)``."""
    for name, a in arrays.items():
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name} must be a numpy array, got {type(a).__name__}")
    dt = arrays["params"].dtype
    if dt not in _EXPONENT:
        raise TypeError(f"params must be float32 or float64, got {dt}")
    if not delta > 0.0 or not max_norm > 0.0 or not np.isfinite(delta):
        raise ValueError(f"delta and max_norm must be > 0 (and delta finite), got {delta!r} "
                         f"and {max_norm!r}")
    return dt, np.asarray(sizes, dtype=np.int64)


def _validate(params, target_params, m, v, sizes, obs, actions, returns, discounts,
              next_obs, weights, grad_out, out) -> None:
    """The wrapper's full argument check, run when the fast checks or the kernel found a
    problem: raises the ValueError/TypeError that names the argument."""
    dt = params.dtype
    if not fusable_sizes(sizes):
        raise ValueError(f"sizes {np.asarray(sizes).tolist()} cannot run fused "
                         "(see fusable_sizes)")
    n = _n_params(sizes)
    for name, a in (("params", params), ("target_params", target_params), ("m", m),
                    ("v", v)):
        if a.shape != (n,) or a.dtype != dt or not a.flags.c_contiguous:
            raise ValueError(f"{name} must be a C-contiguous {dt} vector of length {n}, got "
                             f"{a.dtype}{a.shape}")
    B = obs.shape[0] if obs.ndim == 2 else -1
    for name, a in (("obs", obs), ("next_obs", next_obs)):
        if a.shape != (B, sizes[0]) or a.dtype != dt or not a.flags.c_contiguous:
            raise ValueError(f"{name} must be C-contiguous {dt} [B, {sizes[0]}], got "
                             f"{a.dtype}{a.shape}")
    if B < 1:
        raise ValueError("obs must hold at least one transition")
    if actions.shape != (B,) or actions.dtype != np.int64:
        raise ValueError(f"actions must be int64 [B={B}], got {actions.dtype}{actions.shape}")
    if actions.min() < 0 or actions.max() >= sizes[-1]:
        raise ValueError(f"actions must be in [0, {sizes[-1]})")
    for name, a in (("returns", returns), ("discounts", discounts)):
        if a.shape != (B,) or a.dtype not in _EXPONENT:
            raise ValueError(f"{name} must be float32 or float64 [B={B}], got "
                             f"{a.dtype}{a.shape}")
    if weights is not None and (weights.shape != (B,) or weights.dtype != dt):
        raise ValueError(f"weights must be {dt} [B={B}], got {weights.dtype}{weights.shape}")
    outs = () if out is None else tuple(out)
    for i, (name, a) in enumerate([(f"out[{i}]", o) for i, o in enumerate(outs)]
                                  + [("grad_out", grad_out)]):
        if a is not None and (a.shape != (n,) or a.dtype != dt or not a.flags.c_contiguous
                              or (name != "grad_out" and any(np.may_share_memory(a, x) for x
                                  in (params, target_params, m, v, grad_out, *outs[:i])
                                  if x is not None))):
            raise ValueError(f"{name} must be a C-contiguous {dt} vector of length {n}"
                             + ("" if name == "grad_out" else
                                " sharing no memory with the inputs, grad_out or the other "
                                "destinations"))


# ----------------------------------------------------------------------------- acting
def q_values_reference(params, sizes, x):
    """``Q(s, .)`` ``[B, A]`` of the ReLU MLP (plain NumPy, the definition)."""
    return _forward_ref(params, sizes, x)[-1]


@numba.njit(cache=True)
def _q_values_kernel(params, sizes, x):
    total = 0
    for l in range(1, sizes.shape[0]):
        total += sizes[l]
    buf = np.empty(x.shape[0] * total, params.dtype)
    return _forward(params, sizes, x, buf).copy()


def q_values(params, sizes, x):
    """``Q(s, .)`` ``[B, A]`` for acting: the ReLU MLP's forward in one call, bit for bit
    ``minirl.nn.MLP.forward`` (and ``q_values_reference``).

    params: C-contiguous float32/float64 ``[n_params]``; sizes: the layer widths
    (``fusable_sizes``); x: ``[B, sizes[0]]``, cast to the params' dtype. A new array.
    Raises ValueError naming ``params``/``x`` for a wrong length or shape.
    """
    dt = params.dtype
    sizes = np.asarray(sizes, dtype=np.int64)
    n = _n_params(sizes)
    if dt not in _EXPONENT or params.shape != (n,) or not params.flags.c_contiguous:
        raise ValueError(f"params must be a C-contiguous float vector of length {n}, got "
                         f"{params.dtype}{params.shape}")
    x = np.ascontiguousarray(x, dtype=dt)
    if x.ndim != 2 or x.shape[1] != sizes[0]:
        raise ValueError(f"x must have shape [B, {sizes[0]}], got {x.shape}")
    if x.shape[0] == 0:
        return np.empty((0, int(sizes[-1])), dt)
    if not params.flags.writeable:          # Numba types read-only arrays apart: a copy
        params = params.copy()
    if not x.flags.writeable:
        x = x.copy()
    return _q_values_kernel(params, sizes, x)
