#!/usr/bin/env bash
# Fuzz the wire codec and the checkpoint codec with libFuzzer and AddressSanitizer.
#
#   deploy/fuzz-codec.sh [RUNS]      (default 10000000)
#
# Builds the codec-fuzzer product into .build-fuzz (kept apart from the normal build),
# copies the committed seed corpus (Tests/FuzzCorpus, and Tests/FuzzRegressions: inputs
# that once crashed it) to a scratch corpus, and runs.
# Exits non-zero, leaving a crash-* file, if any input crashes or breaks the round trip.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-10000000}"
swift build -c release --product codec-fuzzer --scratch-path .build-fuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING -Xswiftc -use-ld=lld >&2
corpus="$(mktemp -d)"
trap 'rm -rf "$corpus"' EXIT
cp Tests/FuzzCorpus/* Tests/FuzzRegressions/* "$corpus/"
.build-fuzz/release/codec-fuzzer -runs="$runs" -max_len=4096 -print_final_stats=1 "$corpus"
