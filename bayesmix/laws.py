"""Find, load and describe scaling laws.

A law is a Python file (the built-in ones live in ``models/``, installed as
``bayesmix.models``) that defines:

``NAME`` : str
    Short name.
``EQUATION`` : str
    The equation in plain text.
``sample_params(k, loss_scale) -> dict``
    The priors, as NumPyro ``sample`` statements, returning the parameters that
    ``mean`` reads. ``k`` is the number of domains the law sees, ``loss_scale`` the
    median training loss.
``mean(params, log_n, log_d, h) -> Array``
    The predicted loss for ``log_n = log(N / N_ref)`` and ``log_d = log(D / D_ref)``
    of shape ``(n,)`` and weights ``h`` of shape ``(n, k)``; must be ``jit``- and
    ``vmap``-able.

and optionally ``REFERENCE`` (str), ``USES`` (the inputs the law reads, a subset of
``("N", "D", "h")``; default all three), ``DOMAINS`` (``"all"``, the default, or
``"target"``: the law sees only the weight of the domain named like the target) and

``natural(params, n_ref, d_ref, k) -> dict``
    The map from the parameters ``mean`` reads (centred on the reference point) to the
    paper's own parameters (``A``, ``C_i``, ...), for reports and for checking a law
    against its published equation. ``params`` is what ``sample_params`` returns (one
    draw, or arrays with leading draw axes where the law's formulas broadcast);
    ``n_ref``, ``d_ref`` are the reference scales (model parameters, tokens) and
    ``k`` the number of domains the law sees. Returns a dict of name -> array. A law
    whose exponents depend on ``h`` may state in its docstring that ``N`` and ``D``
    are in units of ``n_ref`` and ``d_ref``. Every built-in law defines it.

A law must give a finite loss with finite gradients when some ``h_i = 0`` (while
one weight is positive); ``bayesmix.lawkit``'s blocks do. The one exception is a law
whose published form is infinite there (BiMix at ``h_i = 0``).

Everything else in bayesmix (the Bayesian fit, the Huber baseline, prediction, mirror
descent) takes a :class:`Law` and calls these two functions: no formula is written
twice.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import jax
import numpy as np
from numpyro import handlers

from bayesmix._errors import BayesmixError

__all__ = ["Law", "builtin_law_names", "count_formula", "free_sites", "load_law",
           "trace_shapes"]

_REQUIRED = ("NAME", "EQUATION", "sample_params", "mean")
_INPUTS = ("N", "D", "h")


def free_sites(fn: Callable[..., Any], key: jax.Array, *args: Any) -> dict[str, dict]:
    """The sampled, unobserved sites of one seeded trace of ``fn(*args)``, in order.

    Each site is NumPyro's trace entry (``value``, ``fn`` with its ``support``, ...).
    """
    tr = handlers.trace(handlers.seed(fn, key)).get_trace(*args)
    return {name: site for name, site in tr.items()
            if site["type"] == "sample" and not site["is_observed"]}


def trace_shapes(fn: Callable[[jax.Array], Any]) -> Any:
    """``fn(key)``'s output shapes from a shape-only trace (nothing compiled or computed:
    run eagerly, a law's priors lowered ~70 one-operation programs); run eagerly only
    when ``fn`` branches on a sampled value (a user's law file may)."""
    try:
        return jax.eval_shape(fn, jax.random.key(0))
    except jax.errors.JAXTypeError:
        return fn(jax.random.key(0))


@dataclass(frozen=True)
class Law:
    """A scaling law loaded from its file.

    Attributes
    ----------
    name, equation, reference : str
        From the law file.
    sample_params : callable
        ``sample_params(k, loss_scale) -> dict``: the priors.
    mean : callable
        ``mean(params, log_n, log_d, h) -> Array``: the law.
    uses : tuple of str
        Which of ``N``, ``D``, ``h`` the law reads.
    target_domain_only : bool
        True when the law sees only the weight of the target's own domain.
    path : Path
        The file the law came from.
    module : module
        The imported law file.
    natural : callable or None
        ``natural(params, n_ref, d_ref, k) -> dict``: the paper's parameters from the
        centred ones (see the module docstring); None when the file defines none.
    """

    name: str
    equation: str
    reference: str
    sample_params: Callable[[int, float], dict[str, Any]]
    mean: Callable[..., jax.Array]
    uses: tuple[str, ...]
    target_domain_only: bool
    path: Path
    module: ModuleType
    natural: Callable[..., dict[str, Any]] | None = None

    def domains_seen(self, k: int) -> int:
        """How many weights the law sees for ``k`` training domains (1 or ``k``)."""
        return 1 if self.target_domain_only else k

    def site_shapes(self, k: int, loss_scale: float = 1.0) -> dict[str, tuple[int, ...]]:
        """Shapes of the sampled (free) parameters for ``k`` domains, in model order."""
        k_seen = self.domains_seen(k)
        order: list[str] = []

        def values(key: jax.Array) -> dict[str, Any]:
            sites = free_sites(self.sample_params, key, k_seen, loss_scale)
            order[:] = list(sites)
            return {name: site["value"] for name, site in sites.items()}

        shapes = trace_shapes(values)
        return {name: tuple(shapes[name].shape) for name in order}

    def n_params(self, k: int) -> int:
        """Number of sampled parameters for ``k`` training domains.

        A law that writes a weighted sum's shares as ``softmax(u)`` samples one more
        than it has: the common shift of ``u``, which its prior holds (joint: ``7 + 4k``
        for the paper's ``5 + 4k``). The data term's shares are ``k - 1`` sticks
        (additive: ``5 + 2k``, the paper's count).
        """
        return int(sum(np.prod(s, dtype=int) for s in self.site_shapes(k).values()))

    def natural_at_prior_draw(self, k: int) -> dict[str, Any]:
        """What ``natural`` returns for one prior draw at ``k`` domains (``{}`` without it).

        The names and shapes of the paper's parameters; the values are one prior draw
        (reference scales 1), for listing, not for inference.
        """
        if self.natural is None:
            return {}
        k_seen = self.domains_seen(k)
        params = handlers.seed(self.sample_params, jax.random.key(0))(k_seen, 1.0)
        return self.natural(params, 1.0, 1.0, k_seen)

    def n_paper_params(self, k: int) -> int | None:
        """Number of the published form's parameters for ``k`` domains: the sizes of what
        ``natural`` returns (None for a law without ``natural``)."""
        if self.natural is None:
            return None
        return int(sum(np.size(v) for v in self.natural_at_prior_draw(k).values()))

    def domain_inputs(self, h: jax.Array, target_index: int | None) -> jax.Array:
        """The weights this law sees: all of ``h`` or the target's column, ``(..., k')``."""
        if not self.target_domain_only:
            return h
        if target_index is None:
            raise BayesmixError(
                f"law '{self.name}' models a domain's loss from its own weight: "
                "the target must also be a training domain"
            )
        return h[..., target_index : target_index + 1]


def count_formula(count: Callable[[int], int]) -> str:
    """A parameter count as a function of ``k``, written ``a + bk`` (laws are linear in
    ``k``; checked at ``k = 2, 3, 4``, else the three values are listed)."""
    counts = [count(k) for k in (2, 3, 4)]
    slope = counts[1] - counts[0]
    intercept = counts[0] - 2 * slope
    if counts[2] != intercept + 4 * slope:
        return ", ".join(f"k={k}: {c}" for k, c in zip((2, 3, 4), counts, strict=True))
    if slope == 0:
        return str(intercept)
    return f"{intercept} + {slope}k" if slope != 1 else f"{intercept} + k"


def _models_dir() -> Path:
    return Path(str(importlib.resources.files("bayesmix.models")))


def builtin_law_names() -> list[str]:
    """Names of the built-in laws, sorted."""
    return sorted(p.stem for p in _models_dir().glob("*.py") if not p.stem.startswith("_"))


def _import_file(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bayesmix_law_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise BayesmixError(f"law file {path} cannot be imported")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # a user's file: report any failure in one line
        raise BayesmixError(
            f"law file {path} failed to import: {type(exc).__name__}: {exc}"
        ) from None
    return module


def load_law(name_or_path: str | Path) -> Law:
    """Load a built-in law by name, or a law file by path.

    Parameters
    ----------
    name_or_path : str or Path
        A built-in name (see ``bayesmix laws``) or a path to a ``.py`` law file.

    Returns
    -------
    Law

    Raises
    ------
    BayesmixError
        Unknown name, missing file, or a file that does not define what a law must.

    Examples
    --------
    >>> law = load_law("additive")
    >>> law.n_params(7)
    19
    """
    text = str(name_or_path)
    if text.endswith(".py") or "/" in text or "\\" in text:
        path = Path(text)
        if not path.is_file():
            raise BayesmixError(f"law file {path} "
                                f"{'is a directory' if path.is_dir() else 'does not exist'}")
    else:
        path = _models_dir() / f"{text}.py"
        if not path.is_file():
            known = ", ".join(builtin_law_names())
            raise BayesmixError(
                f"unknown law '{text}': built-in laws are {known}, or give a path to a law file"
            )
    module = _import_file(path)
    missing = [attr for attr in _REQUIRED if not hasattr(module, attr)]
    if missing:
        raise BayesmixError(
            f"law file {path} does not define {', '.join(missing)} "
            f"(a law defines {', '.join(_REQUIRED)})"
        )
    if not callable(module.sample_params) or not callable(module.mean):
        raise BayesmixError(f"law file {path}: sample_params and mean must be functions")
    uses = tuple(getattr(module, "USES", _INPUTS))
    if not set(uses) <= set(_INPUTS):
        raise BayesmixError(f"law file {path}: USES must be a subset of {_INPUTS}, got {uses}")
    domains = getattr(module, "DOMAINS", "all")
    if domains not in ("all", "target"):
        raise BayesmixError(f"law file {path}: DOMAINS must be 'all' or 'target'")
    natural = getattr(module, "natural", None)
    if natural is not None and not callable(natural):
        raise BayesmixError(f"law file {path}: natural must be a function")
    return Law(
        name=str(module.NAME),
        equation=str(module.EQUATION),
        reference=str(getattr(module, "REFERENCE", "")),
        sample_params=module.sample_params,
        mean=module.mean,
        uses=uses,
        target_domain_only=domains == "target",
        path=path,
        module=module,
        natural=natural,
    )
