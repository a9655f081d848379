#!/usr/bin/env bash
# pstrain beside the parameter server users would write in NumPy and pyzmq, on the
# handwritten digits, with the same settings: an MLP 64-128-10 (relu, softmax
# cross-entropy), 2 workers, batch 32, 30 epochs, plain SGD with lr 0.1.
#
#   benchmarks/compare-ps.sh [DIR]   DIR holds digits-train.csv / digits-test.csv
#                                    (default runs/digits in the repo; written if
#                                    missing or not the recorded bytes)
#   benchmarks/compare-ps.sh -h      this text
#
# Steps: (a) the project's venv (deploy/python-env.sh) and the digits files
# (deploy/datasets/digits.sh); (b) benchmarks/numpy/ps_baseline.py --workers 2
# --batch-size 32 --epochs 30 --hidden 128 --lr 0.1 --seed 0 --json; (c)
#   .build/release/pstrain train --model mlp:128 --data DIR/digits-train.csv
#     --test-data DIR/digits-test.csv --workers 2 --batch-size 32 --epochs 30
#     --lr 0.1 --json
# reading samples_per_s and test_accuracy from each one's JSON. Prints both and
# pstrain/NumPy. The pstrain part is skipped, with the reason, when the binary is
# not built (swift build -c release) or its train has no --model option yet.
# samples/s counts the samples whose gradients the server applied over the wall
# seconds of training; one run each, so expect some spread on a busy machine.
#
# Environment: PSTRAIN  the pstrain binary (default .build/release/pstrain)
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
case "${1:-}" in
  -h | --help)
    usage
    exit 0
    ;;
  -*)
    echo "compare-ps.sh: unknown option '$1' (-h for help)" >&2
    exit 2
    ;;
esac
[ $# -le 1 ] || {
  echo "compare-ps.sh: at most one DIR, got $# arguments (-h for help)" >&2
  exit 2
}

root="$(cd "$(dirname "$0")/.." && pwd)"
script=compare-ps.sh
dir="${1:-$root/runs/digits}"
workers=2 batch_size=32 epochs=30 hidden=128 lr=0.1

# (a) the venv (compare-lib.sh sets $python) and the data
# shellcheck source=benchmarks/compare-lib.sh
. "$root/benchmarks/compare-lib.sh"
if ! "$root/deploy/datasets/digits.sh" --check "$dir" >/dev/null 2>&1; then
  "$root/deploy/datasets/digits.sh" "$dir" >&2
fi
train="$dir/digits-train.csv" test="$dir/digits-test.csv"

echo "digits: MLP 64-$hidden-10, $workers workers, batch $batch_size, $epochs epochs, lr $lr"
row() { printf '%-16s %12.0f samples/s   test accuracy %.4f\n' "$@"; }

# (b) NumPy + pyzmq
baseline="$(measured "the NumPy baseline" "samples_per_s test_accuracy" \
  "$python" "$root/benchmarks/numpy/ps_baseline.py" --train "$train" --test "$test" \
  --workers "$workers" --batch-size "$batch_size" --epochs "$epochs" --hidden "$hidden" \
  --lr "$lr" --seed 0 --json)" || exit 1
read -r baseline_rate baseline_accuracy <<<"$baseline"
row "NumPy + pyzmq" "$baseline_rate" "$baseline_accuracy"

# (c) pstrain
require_pstrain_model train
ours="$(measured "pstrain train" "samples_per_s test_accuracy" \
  "$pstrain" train --model "mlp:$hidden" --data "$train" --test-data "$test" \
  --workers "$workers" --batch-size "$batch_size" --epochs "$epochs" --lr "$lr" --json)" || exit 1
read -r pstrain_rate pstrain_accuracy <<<"$ours"
row "pstrain" "$pstrain_rate" "$pstrain_accuracy"
awk -v p="$pstrain_rate" -v b="$baseline_rate" -v pa="$pstrain_accuracy" -v ba="$baseline_accuracy" \
  'BEGIN { printf "%-16s %12.2fx             accuracy %+.4f\n", "pstrain / NumPy", p / b, pa - ba }'
