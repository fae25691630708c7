"""minirl: autodiff-free NumPy/Numba reference implementations of deep-RL algorithms.

Data flows one way: ``kernels`` <- ``minirl.nn`` <- ``minirl.objectives`` <- ``minirl.algos``
<- ``minirl.cli``.
"""
__version__ = "0.1.0"
