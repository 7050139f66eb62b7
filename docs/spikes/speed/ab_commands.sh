#!/usr/bin/env bash
# A/B of whole commands between two checkouts, alternating, each with its warm JAX cache
# (the eighth study, docs/speed.md). Usage, from /tmp so that no checkout shadows another:
#   bash /path/to/ab_commands.sh BASE_CHECKOUT HEAD_CHECKOUT FIT_DIR
# BASE/HEAD: directories holding bayesmix/ and models/ (a git worktree of each commit);
# FIT_DIR: an 8-target fit of the paper split (bench/paper_compare.py --keep DIR makes one).
set -u
base=$1 head=$2 fit=$3
W="(N == 310e6 and D >= 3.99e9) or (N == 680e6 and D >= 7e9) or (N == 937e6 and D >= 7e9) or (N == 1235e6 and D >= 13e9)"
D=$(dirname "$0")/../../../../shared/data/dmsl_slimpajama/dmsl_llm_slimpajama.csv
COLS=(--n-col model_size --d-col n_tokens --weight-cols 'weight_*' --loss-cols '*_loss')
run() {  # label checkout args...
  local label=$1 pp=$2; shift 2
  local t0 t1
  t0=$(date +%s.%N)
  PYTHONPATH=$pp python -m bayesmix "$@" > "/tmp/ab_$label.out" 2>&1
  local rc=$?
  t1=$(date +%s.%N)
  echo "$label rc=$rc $(echo "$t1 - $t0" | bc) s"
}
for round in 0 1 2; do  # round 0 also warms each checkout's cache
  for side in base head; do
    pp=$head; [ "$side" = base ] && pp=$base
    rm -rf "/tmp/ab_fit_$side"
    run "fit_${side}_r$round" "$pp" fit "$D" "${COLS[@]}" --where "$W" --law additive \
        --target book --out "/tmp/ab_fit_$side"
    grep '^book' "/tmp/ab_fit_${side}_r$round.out"
  done
done
for round in 1 2; do
  for side in base head; do
    pp=$head; [ "$side" = base ] && pp=$base
    run "predict_${side}_r$round" "$pp" predict "$fit" --runs "$D" "${COLS[@]}" \
        --where 'N == 2718e6 and D >= 20e9' --out "/tmp/ab_pred_$side.csv"
    run "optimize_${side}_r$round" "$pp" optimize "$fit" --N 2.718e9 --D 20.734e9 \
        --reference uniform --json
  done
done
cmp /tmp/ab_pred_base.csv /tmp/ab_pred_head.csv && echo "predictions identical"
cmp /tmp/ab_optimize_base_r2.out /tmp/ab_optimize_head_r2.out && echo "optimize identical"
