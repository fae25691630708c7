"""Imitation learning: demonstrations, experts, and a known multimodal environment.

The learning rules live in :mod:`minirl.algos.bc` and :mod:`minirl.algos.dagger`, the losses
in :mod:`minirl.objectives.imitation`, the policy classes in :mod:`minirl.imitation.policies`.
"""
from minirl.imitation.dataset import Demonstrations
from minirl.imitation.experts import (CartPoleExpert, PendulumExpert, PredictExpert, as_expert,
                                      collect_demonstrations)

__all__ = ["Demonstrations", "CartPoleExpert", "PendulumExpert", "PredictExpert", "as_expert",
           "collect_demonstrations"]
