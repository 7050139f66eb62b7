#!/usr/bin/env bash
# Run a command with bayesmix patched, beside the editable install of main.
#
#   bash docs/spikes/speed/run_patched.sh PATCH WORKTREE -- COMMAND...
#
# Makes WORKTREE (git worktree of HEAD) with PATCH applied, and runs COMMAND from /tmp
# with a sitecustomize that drops the editable install's finder and puts WORKTREE first
# on the path (PYTHONPATH alone loses to the finder). bayesmix.models and ../shared are
# linked as the editable install and the benchmarks expect them. Used for the ninth
# study of docs/speed.md:
#   bash docs/spikes/speed/run_patched.sh docs/spikes/speed/contrast.patch /tmp/wt_c -- \
#     python /tmp/wt_c/docs/spikes/speed/sampler_budget.py OUT --laws joint \
#     --targets book,github --seeds 0,1,2
set -euo pipefail
patch=$(realpath "$1"); tree=$2; shift 2; [ "$1" = "--" ] && shift
root=$(git rev-parse --show-toplevel)
[ -d "$tree" ] || { git -C "$root" worktree add -q "$tree" HEAD && git -C "$tree" apply "$patch"; }
ln -sfn "$tree/models" "$tree/bayesmix/models"
[ -e "$(dirname "$tree")/shared" ] || ln -s "$(realpath "$root/../shared")" "$(dirname "$tree")/shared"
site=$(mktemp -d)
cat > "$site/sitecustomize.py" <<PY
import sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f)]
sys.path.insert(0, "$tree")
PY
cd /tmp && PYTHONPATH="$site" "$@"
