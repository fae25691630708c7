"""minirl.nn: layers, networks, initializers, losses and optimizers without autodiff.

Every differentiable piece is an explicit forward/backward pair; all parameters of a network
live in one flat vector (see :mod:`minirl.nn.mlp`). Typical use:

    net = MLP([obs_dim, 64, 64, n_actions], activation=Tanh)
    params = net.init(rng, out_gain=0.01)
    adam = Adam(lr=3e-4); state = adam.init(params)
    logits, cache = net.forward(params, obs)                 # obs [B, obs_dim]
    loss, dlogits = softmax_cross_entropy(logits, actions)
    grad, _ = net.backward(params, cache, dlogits, need_dx=False)
    grad, grad_norm = clip_grad_norm(grad, 0.5)
    params, state = adam.step(params, grad, state)
"""
from minirl.nn.init import (lecun_normal, lecun_uniform, orthogonal, xavier_normal,
                            xavier_uniform, zeros)
from minirl.nn.layers import ACTIVATIONS, Identity, Linear, ReLU, Tanh
from minirl.nn.losses import huber, log_softmax, mse, softmax_cross_entropy, weighted_nll
from minirl.nn.mlp import MLP, ForwardCache, Sequential, Workspace
from minirl.nn.optim import (SGD, Adam, AdamState, ConstantSchedule, LinearSchedule,
                             NonFiniteGradientError, SGDState, clip_grad_norm, hard_update,
                             polyak_update)

__all__ = [
    "Linear", "Tanh", "ReLU", "Identity", "ACTIVATIONS",
    "Sequential", "MLP", "Workspace", "ForwardCache",
    "orthogonal", "xavier_uniform", "xavier_normal", "lecun_uniform", "lecun_normal", "zeros",
    "mse", "huber", "softmax_cross_entropy", "weighted_nll", "log_softmax",
    "SGD", "SGDState", "Adam", "AdamState", "ConstantSchedule", "LinearSchedule",
    "clip_grad_norm", "polyak_update", "hard_update", "NonFiniteGradientError",
]
