"""Built-in scaling laws, one file each (installed as ``bayesmix.models``).

Each file defines ``NAME``, ``EQUATION``, ``REFERENCE``, ``sample_params(k, loss_scale)``
(the priors, as NumPyro ``sample`` statements) and ``mean(params, log_n, log_d, h)``
(the law itself) and ``natural(params, n_ref, d_ref, k)`` (the map to the paper's
parameters). Each docstring gives the published equation with its number in Shukor
et al. 2025, says that the file was checked against the paper's text, and how the
centred parameters map back. See ``bayesmix.laws`` for the full contract.
"""
