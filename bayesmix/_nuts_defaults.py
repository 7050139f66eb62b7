"""NUTS defaults shared by the library and the CLI (no JAX import here)."""

# Measured on the paper's runs (4 chains). Warmup: 300 left the dense mass matrix
# poorly adapted (additive github: 200 leapfrog steps per draw); 600 is enough once
# the mixture terms are sampled through their elasticities (lawkit). Draws: the
# check "max R-hat <= 1.01 over every parameter" needs far more effective draws than
# "ESS >= 400" (simulated AR(1) chains, 4 x 600 draws, 40 parameters: the max R-hat is
# 1.008 at bulk ESS 1000 and 1.014 at 600), so 1000 per chain. target_accept 0.85 is
# between 0.8 (fewer steps, but 38 divergences on the joint law's book) and 0.9.
WARMUP = 600
DRAWS = 1000
TARGET_ACCEPT = 0.85
