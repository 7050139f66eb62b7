"""The paper's LLM study as data: its file's columns, its split, its published figures.

Shukor et al. 2025 ("Scaling Laws for Optimal Data Mixtures"), the SlimPajama runs of
``../shared/data/dmsl_slimpajama`` (7 domains, 8 loss targets; the data are not part of
bayesmix). The split: fit on N in {310M, 680M, 937M, 1.235B} with D >= {4, 7, 7, 13} B
tokens (1534 rows; token counts are stored as e.g. 3.998e9 for "4B", hence the
thresholds just below), evaluate on N = 2.718B with D >= 20B (40 rows, 4 mixtures).

These are numbers to compare with, not settings: nothing in bayesmix reads them
except the benchmarks and ``examples/paper_tables.py``.
"""

__all__ = [
    "CLI_COLUMNS", "COLUMNS", "DOMAINS", "EVAL_D", "EVAL_N", "EVAL_TARGET", "EVAL_WHERE",
    "PAPER_AVG", "PAPER_AVG_RUN", "PAPER_MRE", "PAPER_OH", "TARGETS", "TRAIN_WHERE",
]

COLUMNS = {"n_col": "model_size", "d_col": "n_tokens", "weight_cols": "weight_*",
           "loss_cols": "*_loss"}
CLI_COLUMNS = ["--n-col", "model_size", "--d-col", "n_tokens", "--weight-cols", "weight_*",
               "--loss-cols", "*_loss"]

TRAIN_WHERE = (
    "(N == 310e6 and D >= 3.99e9) or (N == 680e6 and D >= 7e9) "
    "or (N == 937e6 and D >= 7e9) or (N == 1235e6 and D >= 13e9)"
)
EVAL_WHERE = "N == 2718e6 and D >= 20e9"
EVAL_N = 2.718e9
EVAL_D = 20.734e9  # the smallest eval token count: D of the planned run for h*

DOMAINS = ("arxiv", "book", "c4", "github", "commoncrawl", "stackexchange", "wikipedia")
TARGETS = (*DOMAINS, "openhermes")

# Paper MRE % (train / eval at 2.718B), Table 8 as quoted in ../shared/data/README.md.
PAPER_MRE = {
    "additive": {
        "arxiv": (0.50, 2.09), "book": (0.29, 0.80), "c4": (0.29, 0.31),
        "github": (0.65, 1.17), "commoncrawl": (0.29, 0.58), "stackexchange": (0.51, 0.36),
        "wikipedia": (0.92, 4.45),
    },
    "joint": {
        "arxiv": (0.39, 1.62), "book": (0.24, 1.19), "c4": (0.24, 0.34),
        "github": (0.54, 2.51), "commoncrawl": (0.24, 0.90), "stackexchange": (0.38, 0.47),
        "wikipedia": (0.57, 2.09),
    },
}
# Average eval MRE % over the 7 domains (Table 4, LLM row).
EVAL_TARGET = {"additive": 1.39, "joint": 1.30}

# Table 16 (additive law), fractions; h*_OH's wikipedia was 0 from the law, set to 1 %.
PAPER_AVG = (0.096, 0.095, 0.251, 0.080, 0.121, 0.179, 0.170)
PAPER_OH = (0.094, 0.048, 0.278, 0.066, 0.369, 0.135, 0.010)
PAPER_AVG_RUN = (0.0956, 0.0954, 0.2495, 0.0881, 0.1215, 0.1794, 0.1704)
