#!/usr/bin/env bash
# Runs each reliability scenario of the test suite N times and prints a table of
# runs and passes (the figures in docs/reliability.md).
#
#   deploy/reliability.sh [N]     (default 5; the network scenario needs root)
set -uo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"
swift build --build-tests >/dev/null 2>&1 || { echo "build failed" >&2; exit 1; }
scenarios=(
  "killingWorkersLosesNoRowAndAppliesNoneTwice|kill -9 workers at random moments (async and sync)"
  "aKilledServerResumesFromItsCheckpointAndAppliesNothingTwice|kill -9 the server, restart with --resume"
  "aCorruptCheckpointIsRefusedAndTheServerDoesNotStart|corrupt checkpoint refused"
  "trainingFinishesThroughPacketLossAndALinkCut|5% packet loss and a 2 s link cut (network namespaces)"
  "clientsWithoutAnAuthorizedKeyPushNothing|raw ZeroMQ clients without an authorized CURVE key"
  "malformedFramesGetErrorRepliesAndChangeNothing|hostile frames against a running server"
  "aSyncRunGoesOnWhenAWorkerIsStopped|a stopped worker does not block sync steps"
  "aFullDiskIsSaidOnceShownAndSurvived|a full checkpoint disk (tmpfs), then space again"
  "aFileSizeLimitIsSaidOnceShownAndSurvived|a file-size limit on checkpoints, then lifted"
  "aRequiredCheckpointThatFailsStopsTheServer|--checkpoint-required stops at a full disk"
)
printf '| scenario | runs | passed |\n|---|---|---|\n'
for entry in "${scenarios[@]}"; do
  filter="${entry%%|*}"
  title="${entry#*|}"
  passed=0
  for _ in $(seq "$runs"); do
    if swift test --disable-xctest --skip-build --filter "$filter" >/dev/null 2>&1; then
      passed=$((passed + 1))
    fi
  done
  printf '| %s | %d | %d |\n' "$title" "$runs" "$passed"
done
