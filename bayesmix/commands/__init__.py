"""Subcommands of the ``bayesmix`` CLI, one module each.

Each module defines ``register(subparsers)``, which adds its parser and sets ``func``
to a function ``run(args) -> int``. Commands only parse and call the library.
Modules are found here by name (``common`` and ``progress`` are helpers, not
commands); ``ORDER`` fixes how ``--help`` lists them.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

ORDER = ["demo", "laws", "simulate", "runs", "fit", "baseline", "predict", "optimize",
         "compare", "suggest", "report"]

HELPERS = ("common", "progress")

__all__ = ["HELPERS", "ORDER", "command_modules"]


def command_modules() -> list[ModuleType]:
    """The command modules, in ``ORDER`` then alphabetical."""
    names = [m.name for m in pkgutil.iter_modules(__path__) if m.name not in HELPERS]
    names.sort(key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    return [importlib.import_module(f"{__name__}.{name}") for name in names]
