"""Built-in scaling laws, one file each (installed as ``bayesmix.models``).

Each file defines ``NAME``, ``EQUATION``, ``REFERENCE``, ``sample_params(k, loss_scale)``
(the priors, as NumPyro ``sample`` statements) and ``mean(params, log_n, log_d, h)``
(the law itself). See ``bayesmix.laws`` for the full contract.
"""
