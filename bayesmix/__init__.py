"""bayesmix: Bayesian scaling laws for optimal pretraining data mixtures.

Stages, one module each: ``runs`` (load, validate) and ``simulate`` → ``laws``
(the law files in ``models/``) → ``model`` (priors + likelihood) → ``fit`` (NUTS) /
``baseline`` (Huber + basin-hopping) → ``predict`` → ``mixture`` (mirror descent).
"""

from bayesmix._errors import BayesmixError
from bayesmix.laws import Law, builtin_law_names, load_law
from bayesmix.model import Scales, TargetPosterior, loss_model, scales_for
from bayesmix.predict import predict_draws, predict_table
from bayesmix.runs import RunTable, TargetData, load_runs, runs_summary, write_runs
from bayesmix.simulate import simulate_runs

__version__ = "0.1.0"

__all__ = [
    "BayesmixError",
    "Law",
    "RunTable",
    "Scales",
    "TargetData",
    "TargetPosterior",
    "__version__",
    "builtin_law_names",
    "load_law",
    "load_runs",
    "loss_model",
    "predict_draws",
    "predict_table",
    "runs_summary",
    "scales_for",
    "simulate_runs",
    "write_runs",
]
