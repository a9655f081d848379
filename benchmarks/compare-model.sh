#!/usr/bin/env bash
# One worker's compute: NumPy's forward+backward of an MLP 64-128-10 (relu, softmax
# cross-entropy, float64, batch 32, one BLAS thread) beside pstrain's.
#
#   benchmarks/compare-model.sh [--seconds S]   measure NumPy for S seconds (default 5)
#   benchmarks/compare-model.sh -h              this text
#
# Runs benchmarks/numpy/model_bench.py --features 64 --hidden 128 --classes 10
# --batch-size 32 --dtype float64 --seconds S --json in the project's venv
# (deploy/python-env.sh), then
#   .build/release/pstrain bench model --model mlp:128 --features 64 --classes 10
#     --batch-size 32 --json
# reading samples_per_s from each one's JSON, and prints both and pstrain/NumPy.
# The pstrain part is skipped, with the reason, when the binary is not built
# (swift build -c release) or has no `bench model` yet. For the figure NumPy gets on
# a bigger model: benchmarks/numpy/model_bench.py --features 784 --hidden 256
# --batch-size 64 --dtype float32.
#
# Environment: PSTRAIN  the pstrain binary (default .build/release/pstrain)
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
seconds=5
while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help)
      usage
      exit 0
      ;;
    --seconds)
      [ $# -ge 2 ] || {
        echo "compare-model.sh: --seconds needs a value (-h for help)" >&2
        exit 2
      }
      seconds="$2"
      shift 2
      ;;
    *)
      echo "compare-model.sh: unexpected argument '$1' (-h for help)" >&2
      exit 2
      ;;
  esac
done

root="$(cd "$(dirname "$0")/.." && pwd)"
script=compare-model.sh
# shellcheck source=benchmarks/compare-lib.sh
. "$root/benchmarks/compare-lib.sh"

echo "MLP 64-128-10, float64, batch 32, forward+backward on one thread"
numpy_rate="$(measured "model_bench.py" samples_per_s \
  "$python" "$root/benchmarks/numpy/model_bench.py" --features 64 --hidden 128 --classes 10 \
  --batch-size 32 --dtype float64 --seconds "$seconds" --json)" || exit 1
printf '%-16s %12.0f samples/s\n' "NumPy" "$numpy_rate"

require_pstrain_model bench model
pstrain_rate="$(measured "pstrain bench model" samples_per_s \
  "$pstrain" bench model --model mlp:128 --features 64 --classes 10 --batch-size 32 --json)" \
  || exit 1
printf '%-16s %12.0f samples/s\n' "pstrain" "$pstrain_rate"
awk -v p="$pstrain_rate" -v b="$numpy_rate" \
  'BEGIN { printf "%-16s %12.2fx\n", "pstrain / NumPy", p / b }'
