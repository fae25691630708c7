"""Numba kernels for minirl's hot loops, one file per topic.

Each topic file holds three things side by side: ``name_reference`` (plain Python written
straight from the lecture's definition), ``_name_kernel`` (``@numba.njit(cache=True)``,
assumes clean input) and ``name`` (the public wrapper: validates, normalizes, calls the
kernel once). ``kernels`` never imports ``minirl``.
"""
