#!/usr/bin/env bash
# The targets of "audits that act" (docs/audits.md), shown by runs of real processes:
#
#   benchmarks/audit-targets.sh fault [DIR]    8 workers on digits (MLP 64-128-10, leased
#                                              rows), worker 3 faulty with
#                                              scale=1.000001,after=$AFTER, under --quarantine,
#                                              beside the same run without the fault, $SEEDS
#                                              times: who was quarantined, at which push, what
#                                              was rolled back, and the test accuracy of both
#   benchmarks/audit-targets.sh clean [DIR]    $RUNS clean runs at the default audit budget
#                                              under --quarantine, of the relu MLP on digits and
#                                              of the tutorial's chain: quarantines and failed
#                                              audits (the target is none)
#   benchmarks/audit-targets.sh bitflip [DIR]  for every bit B of 0...63, a run of 2 workers
#                                              whose worker 0 flips bit B of one gradient
#                                              coordinate (layer2.bias[0]) of every push, audited
#                                              every 10 versions by both checks: which check
#                                              caught it (a flip that makes the weights
#                                              overflow at once shows as diverged)
#   benchmarks/audit-targets.sh -h             this text
#
# DIR holds digits-train.csv and digits-test.csv (default runs/digits in the repo; written
# if missing). Environment: PSTRAIN (default .build/release/pstrain), SEEDS (default 3),
# RUNS (default 20), AFTER (default 400), EPOCHS (default 60 for fault, 20 otherwise),
# BUDGET (the fault runs' --audit-budget, default 0.02).
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
what="${1:-}"
case "$what" in
  -h | --help)
    usage
    exit 0
    ;;
  fault | clean | bitflip) shift ;;
  *)
    echo "audit-targets.sh: say fault, clean or bitflip, got '${what}' (-h for help)" >&2
    exit 2
    ;;
esac
[ $# -le 1 ] || {
  echo "audit-targets.sh: at most one DIR after '$what', got $# arguments (-h for help)" >&2
  exit 2
}

root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${1:-$root/runs/digits}"
pstrain="${PSTRAIN:-$root/.build/release/pstrain}"
[ -x "$pstrain" ] || {
  echo "audit-targets.sh: $pstrain is not built (swift build -c release --product pstrain)" >&2
  exit 1
}
command -v jq >/dev/null || {
  echo "audit-targets.sh: needs jq (apt-get install -y jq)" >&2
  exit 1
}
if ! "$root/deploy/datasets/digits.sh" --check "$dir" >/dev/null 2>&1; then
  "$root/deploy/datasets/digits.sh" "$dir" >&2
fi
progress="$(mktemp)"
trap 'rm -f "$progress"' EXIT

# run ARGS...: pstrain train ARGS --json (at most 10 minutes); prints its JSON object. A
# run that exits 1 because an audit failed, or 3 because training diverged, still prints
# its JSON; anything else is fatal.
run() {
  local output status=0
  output="$(timeout 600 "$pstrain" train "$@" --json 2>"$progress")" || status=$?
  if [ "$status" -ne 0 ] && [ "$status" -ne 1 ] && [ "$status" -ne 3 ]; then
    tail -n 20 "$progress" >&2
    echo "audit-targets.sh: pstrain train $* exited $status" >&2
    exit 1
  fi
  tail -n 1 <<<"$output"
}

digits=(--model mlp:128 --data "$dir/digits-train.csv" --test-data "$dir/digits-test.csv"
  --workers 8 --leased --batch-size 32 --optimizer momentum --lr 0.02)

case "$what" in
  fault)
    seeds="${SEEDS:-3}" after="${AFTER:-400}" epochs="${EPOCHS:-60}" budget="${BUDGET:-0.02}"
    echo "digits, MLP 64-128-10, 8 workers, leased, $epochs epochs, audit budget $budget; worker 3: scale=1.000001,after=$after"
    printf '%-5s %-40s %-26s %9s %9s %7s\n' seed quarantined "rolled back" faulty clean diff
    for seed in $(seq 1 "$seeds"); do
      faulty="$(run "${digits[@]}" --epochs "$epochs" --init-seed "$seed" --quarantine \
        --audit-budget "$budget" --fault "scale=1.000001,after=$after" --fault-worker 3)"
      clean="$(run "${digits[@]}" --epochs "$epochs" --init-seed "$seed" --quarantine \
        --audit-budget "$budget")"
      who="$(jq -r '[.quarantined[] | "worker \(.worker) push \(.push) (\(.checks | join("+")))"] | join(", ") | if . == "" then "none" else . end' <<<"$faulty")"
      back="$(jq -r '"\(.rollbacks) rollback(s), \(.versions_rolled_back) versions"' <<<"$faulty")"
      a="$(jq -r '.test_accuracy * 100' <<<"$faulty")" b="$(jq -r '.test_accuracy * 100' <<<"$clean")"
      printf '%-5s %-40s %-26s %8.2f%% %8.2f%% %+6.2f\n' "$seed" "$who" "$back" "$a" "$b" \
        "$(awk -v a="$a" -v b="$b" 'BEGIN { print a - b }')"
      jq -r '"      clean run: \(.quarantined | length) quarantined, \(.audits.failed) audits failed; faulty run: detection within \(.detection_pushes_999) pushes at p \(.audit_probability)"' \
        <<<"$faulty" | sed "s/^      clean run: [0-9]* quarantined, [0-9]* audits failed/      clean run: $(jq -r '"\(.quarantined | length) quarantined, \(.audits.failed) audits failed"' <<<"$clean")/"
    done
    ;;
  clean)
    runs="${RUNS:-20}" epochs="${EPOCHS:-20}"
    for model in mlp chain; do
      quarantines=0 failures=0 audits=0
      for i in $(seq 1 "$runs"); do
        if [ "$model" = mlp ]; then
          json="$(run "${digits[@]}" --epochs "$epochs" --init-seed "$i" --quarantine)"
        else
          json="$(run --quarantine)"  # the tutorial: chain, 2 workers, 500 epochs
        fi
        quarantines=$((quarantines + $(jq '.quarantined | length' <<<"$json")))
        failures=$((failures + $(jq '.audits.failed' <<<"$json")))
        audits=$((audits + $(jq '.audits.count' <<<"$json")))
      done
      echo "$model: $runs clean runs at the default budget under --quarantine: $audits audits, $failures failed, $quarantines quarantined"
    done
    ;;
  bitflip)
    epochs="${EPOCHS:-20}"
    coordinate=9600 # layer2.bias[0] of the MLP 64-128-10: 64*128 + 128 + 128*10
    printf '%-4s %8s %10s %8s %20s %10s %9s\n' bit audits "of worker 0" replay "finite differences" confirmed diverged
    replay_caught=0 fd_caught=0 diverged_runs=0 unaudited=0
    for bit in $(seq 0 63); do
      json="$(run "${digits[@]}" --workers 2 --epochs "$epochs" --audit-budget 0 \
        --audit-every 10 --fault "bitflip=$coordinate:$bit")"
      read -r count own replay fd confirmed diverged <<<"$(jq -r '"\(.audits.count) \([.coverage[]? | select(.worker == 0) | .audits] | add // 0) \(.audits.failed_checks.replay) \(.audits.failed_checks.finite_differences) \(.audits.confirmed) \(.diverged)"' <<<"$json")"
      printf '%-4s %8s %10s %8s %20s %10s %9s\n' "$bit" "$count" "$own" "$replay" "$fd" "$confirmed" "$diverged"
      [ "$own" -eq 0 ] && unaudited=$((unaudited + 1))
      [ "$replay" -gt 0 ] && replay_caught=$((replay_caught + 1))
      [ "$fd" -gt 0 ] && fd_caught=$((fd_caught + 1))
      [ "$diverged" = true ] && diverged_runs=$((diverged_runs + 1))
    done
    echo "bits caught: replay $replay_caught of 64, finite differences $fd_caught of 64; $diverged_runs runs diverged, $unaudited runs never audited worker 0"
    ;;
esac
