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
dir="${1:-$root/runs/digits}"
pstrain="${PSTRAIN:-$root/.build/release/pstrain}"
workers=2 batch_size=32 epochs=30 hidden=128 lr=0.1

# (a) the venv and the data
python="$("$root/deploy/python-env.sh" | tail -n 1)"
if ! "$root/deploy/datasets/digits.sh" --check "$dir" >/dev/null 2>&1; then
  "$root/deploy/datasets/digits.sh" "$dir" >&2
fi
train="$dir/digits-train.csv" test="$dir/digits-test.csv"

# "samples_per_s test_accuracy" from the JSON a command printed ($1), on one line.
figures() {
  "$python" "$root/benchmarks/numpy/json_fields.py" samples_per_s test_accuracy <<<"$1" \
    | paste -sd' '
}

echo "digits: MLP 64-$hidden-10, $workers workers, batch $batch_size, $epochs epochs, lr $lr"

# (b) NumPy + pyzmq
baseline_output="$(timeout 600 "$python" "$root/benchmarks/numpy/ps_baseline.py" \
  --train "$train" --test "$test" --workers "$workers" --batch-size "$batch_size" \
  --epochs "$epochs" --hidden "$hidden" --lr "$lr" --seed 0 --json)" || {
  echo "compare-ps.sh: the NumPy baseline failed (see above)" >&2
  exit 1
}
baseline_figures="$(figures "$baseline_output")" || exit 1
read -r baseline_rate baseline_accuracy <<<"$baseline_figures"
printf '%-16s %12.0f samples/s   test accuracy %.4f\n' "NumPy + pyzmq" "$baseline_rate" "$baseline_accuracy"

# (c) pstrain
skip() {
  echo "pstrain          skipped: $*"
  exit 0
}
[ -x "$pstrain" ] || skip "$pstrain is not built (swift build -c release)"
# Read whole, not piped into grep -q: an early exit of grep would fail the pipeline.
train_help="$("$pstrain" train --help 2>&1 || true)"
grep -q -- '--model' <<<"$train_help" || skip "this pstrain's train has no --model option yet"
pstrain_output="$(timeout 600 "$pstrain" train --model "mlp:$hidden" --data "$train" \
  --test-data "$test" --workers "$workers" --batch-size "$batch_size" --epochs "$epochs" \
  --lr "$lr" --json)" || {
  echo "compare-ps.sh: pstrain train failed (see above)" >&2
  exit 1
}
pstrain_figures="$(figures "$pstrain_output")" || {
  echo "compare-ps.sh: could not read pstrain's JSON (it printed: ${pstrain_output:0:300})" >&2
  exit 1
}
read -r pstrain_rate pstrain_accuracy <<<"$pstrain_figures"
printf '%-16s %12.0f samples/s   test accuracy %.4f\n' "pstrain" "$pstrain_rate" "$pstrain_accuracy"
awk -v p="$pstrain_rate" -v b="$baseline_rate" -v pa="$pstrain_accuracy" -v ba="$baseline_accuracy" \
  'BEGIN { printf "%-16s %12.2fx             accuracy %+.4f\n", "pstrain / NumPy", p / b, pa - ba }'
