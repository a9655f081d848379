#!/usr/bin/env bash
# A server checkpointing every 100 versions into a 1 MB tmpfs that a file fills for
# SECONDS, then empties again, with one worker training throughout; prints the updates
# applied while the disk was full, the log lines about failing checkpoints, and the
# recovery (the figures in docs/reliability.md). Needs root (mount).
#
#   deploy/full-disk.sh [PSTRAIN_BINARY] [SECONDS]    (default .build/debug/pstrain, 10)
set -euo pipefail
cd "$(dirname "$0")/.."
pstrain="${1:-.build/debug/pstrain}"
seconds="${2:-10}"
directory="$(mktemp -d)"
log="$(mktemp)"
mount -t tmpfs -o size=1m tmpfs "$directory"
server="" worker=""
cleanup() {
  [ -n "$worker" ] && kill -9 "$worker" 2>/dev/null
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  umount "$directory"
  rmdir "$directory"
  rm -f "$log" "$directory.csv"
}
trap cleanup EXIT
version() {
  "$pstrain" status --connect "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])'
}
"$pstrain" data generate --rows 40 --seed 3 --noise 0.2 --out "$directory.csv" >/dev/null 2>&1
"$pstrain" server --bind 'tcp://127.0.0.1:*' --checkpoint-dir "$directory" --checkpoint-every 100 \
  --layers 500 --lr 0.001 >"$log" 2>&1 &
server=$!
for _ in $(seq 100); do grep -q '^listening' "$log" && break; sleep 0.1; done
endpoint="$(grep '^listening' "$log" | cut -d' ' -f2)"
"$pstrain" worker --connect "$endpoint" --shard 0/1 --data "$directory.csv" --epochs 100000000 \
  >/dev/null 2>&1 &
worker=$!
sleep 3
before="$(version "$endpoint")"
dd if=/dev/zero of="$directory/filler" bs=4k >/dev/null 2>&1 || true
sleep "$seconds"
full="$(version "$endpoint")"
lines="$(grep -c 'fail' "$log" || true)"
rm "$directory/filler"
sleep 3
echo "$((full - before)) updates in $seconds s with a full checkpoint disk: $lines log lines about failing checkpoints, $(grep -c 'work again' "$log" || true) about the recovery; newest checkpoint after: $(ls "$directory" | tail -1)"
grep -E 'fail|work again' "$log" | head -2 | cut -c1-300
