"""NUTS defaults shared by the library and the CLI (no JAX import here)."""

# Measured on the paper's runs (4 chains; bench/paper_fit.py). Warmup: 300 left the
# dense mass matrix poorly adapted (additive github: 200 leapfrog steps per draw); 600
# is enough once the mixture terms are sampled through their elasticities (lawkit).
# Draws: the check "max R-hat <= 1.01 over every parameter" needs far more effective
# draws than "ESS >= 400" (simulated AR(1) chains, 4 x 600 draws, 40 parameters: the
# max R-hat is 1.008 at bulk ESS 1000 and 1.014 at 600). The slowest parameters (the
# shares of domains that barely move a target's loss) gave bulk ESS from 415 to 1100
# per 4000 draws on one target (additive arxiv) across runs; so 1000 draws per chain, and
# chains that fail the checks run on up to twice that (fit_target's max_draws).
# target_accept: divergences on the paper's runs fell from 3-14 per 4000 draws at
# 0.85-0.9 (additive arxiv, book, openhermes; joint wikipedia) to 0-3 at 0.95, for
# about 1.3 times the leapfrog steps; sampling in float32 (fit.PRECISIONS) pays for it.
# The rest went with the shared warmup metric and step size (bayesmix.sampling.warmed_up says how).
CHAINS = 4
WARMUP = 600
DRAWS = 1000
TARGET_ACCEPT = 0.95
