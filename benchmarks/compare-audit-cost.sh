#!/usr/bin/env bash
# What audits at the default budget cost in training throughput: pstrain train on the
# handwritten digits, an MLP 64-128-10 with 8 workers on leased rows, once with the
# coordinator's default --audit-budget (0.02) and once without audits, back to back,
# several times, alternating which goes first.
#
#   benchmarks/compare-audit-cost.sh [DIR]   DIR holds digits-train.csv (default runs/digits
#                                            in the repo; written if missing or not the
#                                            recorded bytes)
#   benchmarks/compare-audit-cost.sh -h      this text
#
# Each pair runs
#   .build/release/pstrain train --model mlp:128 --data DIR/digits-train.csv --workers 8
#     --leased --epochs $EPOCHS --json
# with audits (the default budget: a sample of every worker's pushes) and with
# --audit-budget 0 --audit-every 18446744073709551614 (no periods reached, no sampling:
# only one early push of each worker is audited), reading samples_per_s from each one's JSON.
# Prints each pair, then the ratio audited / unaudited as median, min and max over the
# pairs, the sampling probability the coordinator chose and the pushes within which a
# worker faulty on every push is flagged with probability 0.999. Each pair also shows the
# coordinator's audit compute (thread CPU time) as a share of the workers' (pushes × the
# measured cost of one gradient), a figure the machine's load hardly moves. The machine
# is shared: quote the median ratio with its spread.
#
# Environment: PSTRAIN  the pstrain binary (default .build/release/pstrain)
#              PAIRS    pairs of runs (default 5)
#              EPOCHS   epochs per run (default 20)
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
case "${1:-}" in
  -h | --help)
    usage
    exit 0
    ;;
  -*)
    echo "compare-audit-cost.sh: unknown option '$1' (-h for help)" >&2
    exit 2
    ;;
esac
[ $# -le 1 ] || {
  echo "compare-audit-cost.sh: at most one DIR, got $# arguments (-h for help)" >&2
  exit 2
}

root="$(cd "$(dirname "$0")/.." && pwd)"
script=compare-audit-cost.sh
dir="${1:-$root/runs/digits}"
pairs="${PAIRS:-5}" epochs="${EPOCHS:-20}"

# shellcheck source=benchmarks/compare-lib.sh
. "$root/benchmarks/compare-lib.sh"
if ! "$root/deploy/datasets/digits.sh" --check "$dir" >/dev/null 2>&1; then
  "$root/deploy/datasets/digits.sh" "$dir" >&2
fi
require_pstrain_model train
if ! "$pstrain" train --help 2>&1 | grep -q -- '--audit-budget'; then
  echo "pstrain          skipped: this pstrain has no 'train --audit-budget' yet"
  exit 0
fi

common=(train --model mlp:128 --data "$dir/digits-train.csv" --workers 8 --leased
  --epochs "$epochs" --json)
unaudited=(--audit-budget 0 --audit-every 18446744073709551614)
fields="samples_per_s audit_probability detection_pushes_999 audit_cpu_seconds gradient_seconds gradients_applied"

# The runs' progress goes here; shown when a run fails.
progress="$(mktemp)"
trap 'rm -f "$progress"' EXIT

echo "digits: MLP 64-128-10, 8 workers, leased rows, $epochs epochs; $pairs pairs"
printf '%-6s %14s %14s %8s %18s\n' pair audited unaudited ratio "audit CPU share"
ratios=()
for pair in $(seq 1 "$pairs"); do
  # Alternate the order, so that a machine getting busier or quieter favours neither.
  if [ $((pair % 2)) -eq 1 ]; then order="with without"; else order="without with"; fi
  for which in $order; do
    if [ "$which" = with ]; then
      figures="$(measured "the audited run" "$fields" "$pstrain" "${common[@]}" 2>"$progress")" ||
        { tail -n 20 "$progress" >&2; exit 1; }
      read -r with_rate probability detection with_cpu with_r with_applied <<<"$figures"
    else
      figures="$(measured "the unaudited run" "$fields" \
        "$pstrain" "${common[@]}" "${unaudited[@]}" 2>"$progress")" ||
        { tail -n 20 "$progress" >&2; exit 1; }
      read -r without_rate _ _ without_cpu without_r without_applied <<<"$figures"
    fi
  done
  ratio="$(awk -v a="$with_rate" -v b="$without_rate" 'BEGIN { printf "%.4f", a / b }')"
  ratios+=("$ratio")
  # The coordinator's compute spent auditing, as a share of the workers' (pushes × the
  # measured cost of one gradient, r): audited run / unaudited run.
  share="$(awk -v c="$with_cpu" -v r="$with_r" -v n="$with_applied" \
    -v c0="$without_cpu" -v r0="$without_r" -v n0="$without_applied" \
    'BEGIN { printf "%.4f / %.4f", c / (n * r), c0 / (n0 * r0) }')"
  printf '%-6s %12.0f/s %12.0f/s %8s %18s\n' "$pair" "$with_rate" "$without_rate" "$ratio" "$share"
done
printf '%s\n' "${ratios[@]}" | sort -n | awk -v p="$probability" -v n="$detection" '
  { r[NR] = $1 }
  END {
    median = NR % 2 ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2
    printf "audited / unaudited: median %.4fx (min %.4fx, max %.4fx over %d pairs)\n", median, r[1], r[NR], NR
    printf "audit probability %s (last audited run); a worker faulty on every push is flagged within %s of its pushes with probability 0.999\n", p, n
  }'
