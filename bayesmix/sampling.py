"""NUTS for one target: two-phase warmup with a shared metric, then draws until mixed.

The chains start where :mod:`bayesmix.start` put them, with its Laplace covariance as
the first metric; :func:`warmed_up` adapts one metric for all chains from their pooled
draws in Stan's windows, then the step size under it; :func:`sample` probes the step
size (cut while the chains diverge), draws, and while the chains fail the R-hat,
bulk- or tail-ESS check (:func:`bayesmix.diagnostics.mixed`) they run on from where
they stopped, without a new warmup.

The chains are driven here, with NumPyro's NUTS kernel (``init`` and ``sample``), not
through ``numpyro.infer.MCMC``: ``MCMC`` binds the model's arguments into the program
it compiles, so every target (other losses, another ``loss_scale``) and every phase
length compiled its own sampler. Here the model's arguments (the data, ``loss_scale``,
the likelihood weight) and the first metric are arguments of the compiled programs and
the chains advance in blocks of :data:`BLOCK` iterations, so a fit compiles one block
per kernel (the warmup's metric phase; the step-size phase, which also draws), plus
one for the rest of a phase or window whose length is not a multiple of :data:`BLOCK`
(none at the default settings), and with JAX's persistent cache on
(:func:`bayesmix.use_compilation_cache`; the CLI turns it on) another fit of the same
law, settings and number of rows loads them instead of compiling, in this process or
the next. The kernel, the keys per chain (``split(key, chains)``) and the states are
those of ``MCMC``; through the same kernel and adaptation the draws agree with
``MCMC``'s to rounding for the first iterations (1e-13 after 10 warmup iterations in
float64) and then part, because NUTS turns a rounding difference into another
trajectory; they are the same for the same key, run to run (``tests/test_fit.py``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer import NUTS
from numpyro.infer.hmc_util import build_adaptation_schedule

from bayesmix._errors import BayesmixError
from bayesmix.diagnostics import mixed
from bayesmix.idata import posterior_sites
from bayesmix.metric import window_metric, with_metric

__all__ = [
    "BLOCK",
    "DIVERGENT_SHARE",
    "PROBE",
    "STEP_CUT",
    "STEP_CUTS",
    "EXTRA_FIELDS",
    "Chains",
    "Drawn",
    "chain_method",
    "joined",
    "sample",
    "smallest_step_size",
    "warmed_up",
]

EXTRA_FIELDS = ("diverging", "num_steps", "energy", "potential_energy", "accept_prob",
                "adapt_state.step_size")
"""Per-draw sampler statistics kept beside the draws."""

BLOCK = 50
"""Iterations per compiled block; a phase of another length adds one program for its rest."""

PROBE = 200
"""Most draws a chain of the probe that decides the step size, then discarded
(:func:`sample`): a quarter of the draws in whole blocks, when that is fewer."""
STEP_CUT = 0.7
"""Factor of the step size after a probe with a divergence."""
STEP_CUTS = 4
"""Most cuts of the step size (to 0.24 of warmup's)."""
DIVERGENT_SHARE = 0.001
"""Share of divergent draws above which they are drawn again, once, with a cut step
(issue 17's bar; :func:`bayesmix.diagnostics.diagnose` warns of any divergence)."""


class Chains(NamedTuple):
    """NUTS chains between calls: the kernel (its adaptation schedule) and every chain's state.

    Attributes
    ----------
    kernel : numpyro.infer.NUTS
        Initialised for the last warmup phase.
    state : HMCState
        Every chain's state, leading axis the chain.
    chain_method : {"parallel", "vectorized", "sequential"}
        Chains ``pmap``ped over devices, ``vmap``ped on one (an accelerator), or mapped
        one after the other on one.
    progress : bool
        Show a progress bar on stderr while the chains advance.
    programs : dict
        The kernel's compiled blocks by length (filled as the chains advance).
    steps : int
        Leapfrog steps (gradient evaluations) so far, all chains and phases.
    """

    kernel: NUTS
    state: Any
    chain_method: str
    progress: bool
    programs: dict
    steps: int = 0


def chain_method(chains: int) -> str:
    """Parallel when every chain has a device; otherwise vectorized on an accelerator,
    sequential on CPU.

    Measured on the additive law (1532 runs, float64): on CPU one gradient of 4
    vectorized chains costs 4 times one chain's, and vectorized NUTS moves in lockstep
    (each iteration costs the longest of the chains' trajectories), so with too few
    CPU devices chains run one after the other. The CLI sets one CPU device per chain.
    A GPU evaluates 4 chains' gradients in about the time of one, so there the chains
    share its devices vectorized (``--platform gpu``).
    """
    if jax.local_device_count() >= chains:
        return "parallel"
    return "sequential" if jax.default_backend() == "cpu" else "vectorized"


def _field(state: Any, name: str) -> jax.Array:
    for part in name.split("."):
        state = getattr(state, part)
    return state


def _block_program(kernel: NUTS, length: int, method: str) -> Callable[..., Any]:
    """``(states, args) -> (states, z, fields)``: ``length`` NUTS iterations of every chain."""
    def one_chain(state: Any, args: tuple) -> tuple[Any, Any, dict[str, jax.Array]]:
        def step(s: Any, _: None) -> tuple[Any, tuple[Any, dict[str, jax.Array]]]:
            s = kernel.sample(s, args, {})
            return s, (s.z, {name: _field(s, name) for name in EXTRA_FIELDS})

        state, (z, fields) = jax.lax.scan(step, state, None, length=length)
        return state, z, fields

    if method == "parallel":
        return jax.pmap(one_chain, in_axes=(0, None))
    if method == "vectorized":
        return jax.jit(jax.vmap(one_chain, in_axes=(0, None)))
    return jax.jit(lambda states, args: jax.lax.map(lambda s: one_chain(s, args), states))


def _advance(chains: Chains, args: tuple, n: int, *, label: str
             ) -> tuple[Chains, Any, dict[str, jax.Array]]:
    """Run every chain ``n`` iterations; returns the chains and the per-iteration
    ``z`` and :data:`EXTRA_FIELDS`, shape ``(chains, n, ...)``."""
    blocks = [BLOCK] * (n // BLOCK) + ([n % BLOCK] if n % BLOCK else [])
    if not blocks:
        raise BayesmixError(f"{label or 'a phase'} needs at least one iteration, got {n}")
    programs = chains.programs
    for length in set(blocks) - set(programs):
        programs[length] = _block_program(chains.kernel, length, chains.chain_method)
    bar = _progress_bar(n, label) if chains.progress else None
    state, parts = chains.state, []
    try:
        for length in blocks:
            state, z, fields = programs[length](state, args)
            parts.append((z, fields))
            if bar is not None:
                bar.update(length)
    finally:
        if bar is not None:
            bar.close()
    # on the host: every reader of the draws takes them to NumPy (a device concatenate
    # compiled a program per phase and leaf shape, 30 in a fit)
    z, fields = jax.tree.map(lambda *xs: np.concatenate([np.asarray(x) for x in xs], axis=1),
                             *parts)
    steps = chains.steps + int(np.sum(fields["num_steps"], dtype=np.int64))
    return chains._replace(state=state, steps=steps), z, fields


def _progress_bar(total: int, label: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=label, file=sys.stderr, leave=False)


def _initialised(make_kernel: Callable[[Any], NUTS], key: jax.Array, chains: int,
                 num_warmup: int, init: dict, args: tuple, metric: Any) -> tuple[NUTS, Any]:
    """A kernel and every chain's initial state (stacked), as ``MCMC`` makes them.

    ``make_kernel(metric)`` builds the NUTS kernel with its first inverse mass matrix;
    it is built and initialised (``kernel.init`` per chain) inside one jitted function
    of the keys, the starts, the model's arguments and the metric, vmapped over chains,
    as ``MCMC`` runs the same inside its map over chains. So the metric is an argument
    of the compiled program, not a constant in it (a fit's metric is its own, and would
    make every fit compile its own); and NumPyro's ``initialize_model`` does not search
    the prior eagerly for values it then discards (it raised on the paper's commoncrawl
    runs, whose valid region is small).
    """
    keys = jax.random.split(key, chains) if chains > 1 else key[None]  # as MCMC.run
    kernels = []

    def one(k: jax.Array, z: dict, model_args: tuple, m: Any) -> Any:
        kernel = make_kernel(m)
        kernels.append(kernel)
        return kernel.init(k, num_warmup, z, model_args=model_args)

    # values that come out of a parallel block are spread over the devices: copied
    # to fresh arrays first, so that the stacked states carry no sharding of their own
    states = jax.jit(jax.vmap(one, in_axes=(0, 0, None, None)))(
        keys, _on_one_device(init), args, _on_one_device(metric))
    # ``one`` is new, so it was traced once. The kernel built in that trace keeps its
    # first metric as a dead tracer (``_inverse_mass_matrix``), which nothing reads
    # again: ``sample`` takes the metric from the state, and ``init`` is not called
    # on it twice. What its sampler closes over is static (the adaptation schedule,
    # tree depth; NumPyro's heuristic step-size search, which would close over the
    # model's arguments, is off by default and not used here).
    assert len(kernels) == 1
    return kernels[0], _on_one_device(states)


def _on_one_device(tree: Any) -> Any:
    """The same values as fresh (uncommitted) arrays on the default device."""
    def fresh(x: jax.Array) -> jax.Array:
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(np.asarray(jax.random.key_data(x)),
                                            impl=jax.random.key_impl(x))
        return jnp.asarray(np.asarray(x))

    return jax.tree.map(fresh, tree)


def warmed_up(key: jax.Array, model: Any, args: tuple, init: dict, metric: jax.Array, *,
              chains: int, chain_method: str, warmup: int, dense_mass: bool,
              target_accept: float, max_tree_depth: int, progress: bool) -> Chains:
    """Chains that have finished warmup with one shared metric and step size.

    With several chains, warmup has two phases. The first ``warmup - warmup // 4``
    iterations adapt the mass matrix in Stan's windows (NumPyro's schedule), starting
    from ``metric``: at the end of each window every chain takes the same new metric,
    the covariance of all chains' draws in that window
    (:func:`bayesmix.metric.window_metric`), while NumPyro's dual averaging adapts each
    chain's step size and restarts at each window, as it does in its own warmup. The
    last ``warmup // 4`` iterations adapt only the step size under the last metric,
    from where the chains stopped. Finally every chain takes the smallest step size any
    of them adapted (:func:`smallest_step_size`). With one chain, NumPyro's own warmup
    adapts both.

    On the paper's runs chains adapted separately ended with step sizes up to 2.5x
    apart, and the divergences (up to 15 of 4000 on additive arxiv) came from the
    chains with the larger steps; with the shared metric and step size, the 32 fits of
    ``bench/paper_fit.py`` (two laws, eight targets, two seeds) had none. NumPyro's own
    metric of each window, shrunk towards ``1e-3 I`` as Stan's is, was 140 times too
    wide for the loss at the reference point (posterior sd about 1e-3) after the first
    window: the warmup then spent 130-370 leapfrog steps an iteration where the metric
    of the start (the Laplace covariance) had needed 20 (``docs/speed.md``, fifth study).

    Parameters
    ----------
    key : jax.Array
    model : callable
        A NumPyro model of ``args`` (:func:`bayesmix.model.bound_model`).
    args : tuple of arrays
        The model's arguments; traced, not compiled in.
    init : dict of name -> array, shape ``(chains, ...)``
        Every chain's start in unconstrained space.
    metric : Array
        The first inverse mass matrix.
    chains : int
    chain_method : {"parallel", "sequential"}
        See :func:`chain_method`.
    warmup : int
        Warmup iterations per chain, at least 1.
    dense_mass : bool
    target_accept : float
    max_tree_depth : int
    progress : bool
        Show a progress bar per phase on stderr.

    Returns
    -------
    Chains
        Warmed up; ``Chains.steps`` counts warmup's leapfrog steps.
    """
    def kernel(adapt_mass_matrix: bool) -> Callable[[Any], NUTS]:
        return lambda metric: NUTS(
            model, dense_mass=dense_mass, target_accept_prob=target_accept,
            max_tree_depth=max_tree_depth, inverse_mass_matrix=metric,
            adapt_mass_matrix=adapt_mass_matrix)

    tune = warmup // 4 if chains > 1 else 0
    if tune:
        key_metric, key = jax.random.split(key)
        first, state = _initialised(kernel(False), key_metric, chains, warmup - tune, init,
                                    args, metric)
        first_chains = _windows(Chains(first, state, chain_method, progress, {}), args,
                                warmup - tune, metric)
        state, steps = first_chains.state, first_chains.steps
        metric = jax.tree.map(lambda m: m[0], state.adapt_state.inverse_mass_matrix)
        init = state.z
    else:
        steps = 0
    last, state = _initialised(kernel(not tune), key, chains, tune or warmup, init, args,
                               metric)
    warm, _, _ = _advance(Chains(last, state, chain_method, progress, {}, steps), args,
                          tune or warmup, label="warmup (step size)" if tune else "warmup")
    return warm._replace(state=smallest_step_size(warm.state))


def _windows(chains: Chains, args: tuple, n: int, metric: jax.Array) -> Chains:
    """``n`` iterations of chains whose kernel adapts the step size only; at the end of
    each of NumPyro's metric windows the chains take
    :func:`bayesmix.metric.window_metric` of it."""
    done = 0
    for window in build_adaptation_schedule(n)[1:-1]:
        chains, z, _ = _advance(chains, args, window.end + 1 - done, label="warmup (metric)")
        first = window.start - done  # the window's own draws
        metric = window_metric(jax.tree.map(lambda x, i=first: np.asarray(x)[:, i:], z),
                               np.asarray(metric))
        chains = chains._replace(state=with_metric(chains.state, metric))
        done = window.end + 1
    if done < n:
        chains, _, _ = _advance(chains, args, n - done, label="warmup (metric)")
    return chains


def smallest_step_size(state: Any) -> Any:
    """Every chain samples with the smallest step size adapted by any chain.

    Chains adapt their step sizes separately, and the ones with the larger steps are
    the ones that diverge where the posterior stiffens. The floor, half the median,
    keeps one chain whose adaptation collapsed from slowing all of them.
    """
    step = state.adapt_state.step_size
    common = jnp.maximum(jnp.min(step), 0.5 * jnp.median(step))
    return state._replace(adapt_state=state.adapt_state._replace(
        step_size=jnp.full_like(step, common)))


def _draws(chains: Chains, args: tuple, n: int
           ) -> tuple[Chains, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``n`` draws of every chain: constrained sites and deterministics, and statistics."""
    chains, z, fields = _advance(chains, args, n, label="draws")
    postprocess = jax.jit(jax.vmap(jax.vmap(
        lambda zi, a: chains.kernel.postprocess_fn(a, {})(zi), in_axes=(0, None)),
        in_axes=(0, None)))
    samples = postprocess(z, args)
    return chains, _numpy64(samples), _numpy64(fields)


def _numpy64(tree: dict[str, jax.Array]) -> dict[str, np.ndarray]:
    """NumPy arrays, floats widened to float64."""
    def numpy64(x: jax.Array) -> np.ndarray:
        x = np.asarray(x)
        return x.astype(np.float64) if np.issubdtype(x.dtype, np.floating) else x

    return {name: numpy64(v) for name, v in tree.items()}


class Drawn(NamedTuple):
    """What :func:`sample` returns.

    Attributes
    ----------
    samples, extra : dict of name -> ndarray, shape ``(chains, kept, ...)``
        The kept draws and their sampler statistics :data:`EXTRA_FIELDS`, floats as
        float64.
    gradients : int
        Leapfrog steps of all chains: warmup, discarded draws and kept draws.
    step_cuts : int
        Times the step size was cut after warmup.
    discarded_divergences : int
        Divergent transitions among the discarded draws (the probes, and a set of draws
        drawn again).
    """

    samples: dict[str, np.ndarray]
    extra: dict[str, np.ndarray]
    gradients: int
    step_cuts: int
    discarded_divergences: int


def sample(chains: Chains, args: tuple, *, draws: int, max_draws: int) -> Drawn:
    """Draws of warmed-up chains, run on in blocks of ``draws // 2`` until mixed.

    First a probe of :data:`PROBE` draws (fewer when ``draws`` is small), always discarded:
    while it has a divergence, every chain's step size is cut by :data:`STEP_CUT` and
    the probe is drawn again. Then ``draws`` draws; when more than
    :data:`DIVERGENT_SHARE` of them diverged, they are discarded, the step is cut once
    more and ``draws`` are drawn again and kept whatever they hold (at most
    :data:`STEP_CUTS` cuts in all). So no kept draw was chosen by its own divergences;
    the decisions rest on draws that are thrown away (counted as gradients and in
    :attr:`Drawn.discarded_divergences`). The step size adapted in warmup is the
    largest the chains accept at ``target_accept`` where they were; a region of the
    posterior that is much narrower (a weak domain's elasticity in its upper tail,
    where its exponent grows as its share shrinks: ``docs/speed.md``) can need a
    smaller one, and a chain that enters it with the larger step diverges there and
    sticks.
    """
    cuts = discarded = 0
    probe_length = min(PROBE, draws, max(BLOCK, draws // 4 // BLOCK * BLOCK))

    def cut(chains: Chains) -> Chains:
        adapt = chains.state.adapt_state
        return chains._replace(state=chains.state._replace(
            adapt_state=adapt._replace(step_size=adapt.step_size * STEP_CUT)))

    while True:
        chains, _, probe = _draws(chains, args, probe_length)
        diverged = int(probe["diverging"].sum())
        discarded += diverged
        if not diverged or cuts == STEP_CUTS:
            break
        chains, cuts = cut(chains), cuts + 1
    chains, samples, extra = _draws(chains, args, draws)
    if extra["diverging"].mean() > DIVERGENT_SHARE and cuts < STEP_CUTS:
        discarded += int(extra["diverging"].sum())
        chains, cuts = cut(chains), cuts + 1
        chains, samples, extra = _draws(chains, args, draws)
    # not mixed yet: the chains run on from where they stopped (no new warmup)
    while extra["diverging"].shape[1] < max_draws and not mixed(posterior_sites(samples)):
        more = min(max(draws // 2, 1), max_draws - extra["diverging"].shape[1])
        chains, more_samples, more_extra = _draws(chains, args, more)
        samples, extra = joined(samples, more_samples), joined(extra, more_extra)
    return Drawn(samples, extra, chains.steps, cuts, discarded)


def joined(first: dict[str, np.ndarray], then: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Draws grouped by chain, ``then`` appended to ``first`` along the draw axis."""
    return {name: np.concatenate([v, then[name]], axis=1) for name, v in first.items()}
