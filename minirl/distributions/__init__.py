"""Policy distributions with forward and vector-Jacobian backward side by side (no autodiff).

A distribution is a thin, immutable wrapper around its parameter arrays (batch shape ``[...]``,
e.g. ``[B]`` or ``[T, N]``; float64 by default, float32 kept if every parameter is float32).
Each differentiable quantity ``q`` (log_prob, entropy, kl, a reparameterized sample) has a
``q_backward`` that takes ``dq`` = dL/dq (same shape as q, or a scalar) and returns dL/d(param)
in each parameter's own shape and dtype. That is how a loss reaches the network's output layer:

    dist = Categorical(logits)                 # logits [B, A] from the policy network
    logp = dist.log_prob(actions)              # [B]
    loss, dlogp = some_surrogate(logp, ...)    # e.g. PPO's clipped objective
    dlogits = dist.log_prob_backward(actions, dlogp)   # [B, A] -> network backward

==========================  ===================================================================
Categorical(logits)         discrete actions; sample, mode, log_prob, entropy, kl (+ backward)
DiagGaussian(mean, log_std) continuous actions; + rsample(rng) -> (a, eps), rsample_backward
TanhGaussian(mean, log_std, low, high)  bounded box for SAC: rsample -> (a, u, eps),
                            log_prob_from_pre_tanh(u), rsample_backward(eps, da, dlogp)
MixtureOfGaussians(logits, means, log_stds)  multimodal imitation policies; sample, mode,
                            log_prob (+ backward to all three parameters)
MultiCategorical(logits, nvec)  MultiDiscrete actions: a product of categoricals (as Categorical)
Bernoulli(logits)           MultiBinary actions: a product of Bernoullis (as Categorical)
StateDependentNoise(mean, log_std [F, D], features)  gSDE: a = mu + z(s)^T theta, held noise;
                            rsample_with_noise(eps), log_prob, entropy, kl (+ backward to
                            mean, log_std and features); sample_noise(log_std, rng, batch)
==========================  ===================================================================

See each module's docstring for the equations and the full method list.
"""
from minirl.distributions.categorical import Categorical, log_softmax
from minirl.distributions.gaussian import ATANH_CLIP_EPS, DiagGaussian, TanhGaussian
from minirl.distributions.mixture import MixtureOfGaussians
from minirl.distributions.multi import Bernoulli, MultiCategorical
from minirl.distributions.sde import SDE_EPSILON, StateDependentNoise, sample_noise

__all__ = [
    "ATANH_CLIP_EPS",
    "Bernoulli",
    "Categorical",
    "DiagGaussian",
    "MixtureOfGaussians",
    "MultiCategorical",
    "SDE_EPSILON",
    "StateDependentNoise",
    "TanhGaussian",
    "log_softmax",
    "sample_noise",
]
