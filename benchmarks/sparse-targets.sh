#!/usr/bin/env bash
# The sparse-model targets of docs/sparse.md, measured in one run with a release build:
#   auc      sparse-logreg on ROWS generated click rows (default 10^6, 10^6 feature ids,
#            --hash-bits 24), 4 workers, 2 server shards: test AUC against the teacher's AUC
#            on the same test file, with the busiest shard's keys against the mean, examples/s
#            and bytes on the wire per example.
#   wire     bytes on the wire per example at --hash-bits 16, 24 and 40 on the same data
#            (independent of the key space), and at 20 and 40 nonzeros per row (proportional).
#   memory   bench sparse --memory: keyed-table bytes against row bytes, keys from 2^40.
#   bench    bench sparse: pull + push of 10,000 keys of 8 values against raw libzmq.
# Usage: benchmarks/sparse-targets.sh auc|wire|memory|bench [DIR]   (env ROWS, EPOCHS, LR, BIN)
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:?usage: $0 auc|wire|memory|bench [DIR]}
dir=${2:-.build/sparse-targets}
mkdir -p "$dir"
# BIN: a pstrain binary to use instead of building one (release).
bin=${BIN:-}
if [ -z "$bin" ]; then
  swift build -c release --product pstrain >&2
  bin=.build/release/pstrain
fi
rows=${ROWS:-1000000}
epochs=${EPOCHS:-1}
lr=${LR:-0.1}
generate() { # rows features seed file
  [ -f "$4" ] || "$bin" data generate-clicks --rows "$1" --features "$2" --seed "$3" \
    --teacher-seed 7 --out "$4" >&2
}
case "$what" in
auc)
  generate "$rows" 1000000 1 "$dir/train-$rows.libsvm"
  test="$dir/test-$rows.libsvm"
  [ -f "$test.json" ] || "$bin" data generate-clicks --rows $((rows / 10)) --features 1000000 \
    --seed 2 --teacher-seed 7 --out "$test" --json >"$test.json"
  teacher=$(sed 's/.*"teacher_auc":\([0-9.e-]*\).*/\1/' "$test.json")
  result=$("$bin" train --model sparse-logreg --hash-bits 24 --lr "$lr" \
    --data "$dir/train-$rows.libsvm" --test-data "$test" --workers 4 \
    --server-shards 2 --epochs "$epochs" --batch-size 100 --pipeline 4 --timeout-s 3600 --json)
  echo "$result"
  auc=$(echo "$result" | sed 's/.*"test_auc":\([0-9.e-]*\).*/\1/')
  echo "teacher AUC $teacher, test AUC $auc, ratio $(python3 -c "print(round($auc / $teacher, 4))")"
  ;;
wire)
  generate 200000 1000000 3 "$dir/wire.libsvm"
  for bits in 16 24 40; do
    echo -n "hash-bits $bits: "
    "$bin" train --model sparse-logreg --hash-bits "$bits" --data "$dir/wire.libsvm" --workers 2 \
      --epochs 1 --batch-size 100 --pipeline 4 --json | sed 's/.*"bytes_per_example":\([0-9.e]*\).*/\1 bytes per example/'
  done
  # The same rows with every other id dropped: about half the nonzeros.
  [ -f "$dir/half.libsvm" ] || awk '{printf "%s", $1; for (i = 2; i <= NF; i += 2) printf " %s", $i; print ""}' \
    "$dir/wire.libsvm" >"$dir/half.libsvm"
  echo -n "hash-bits 24, half the nonzeros: "
  "$bin" train --model sparse-logreg --hash-bits 24 --data "$dir/half.libsvm" --workers 2 \
    --epochs 1 --batch-size 100 --pipeline 4 --json | sed 's/.*"bytes_per_example":\([0-9.e]*\).*/\1 bytes per example/'
  ;;
memory)
  "$bin" bench sparse --memory
  ;;
bench)
  "$bin" bench sparse
  ;;
*)
  echo "unknown target $what (auc, wire, memory, bench)" >&2
  exit 2
  ;;
esac
