#!/usr/bin/env bash
# scikit-learn's handwritten digits (load_digits: 1,797 images of 8x8 pixels, 10
# classes; the data ships inside the package, nothing is downloaded) as two CSV
# files for pstrain's dense models.
#
#   deploy/datasets/digits.sh DIR              write DIR/digits-train.csv (1347 rows) and
#                                              DIR/digits-test.csv (450 rows); DIR is made
#                                              if missing; prints the row counts and sha256
#   deploy/datasets/digits.sh --check DIR      exit 0 only if both files in DIR have the
#                                              recorded sha256 (the same bytes on every run)
#   deploy/datasets/digits.sh --reference DIR  scikit-learn's own test accuracies on the
#                                              split (writes the files first if missing)
#   deploy/datasets/digits.sh -h               this text
#
# Header p0,...,p63,label; pixels divided by 16 in the shortest exact decimal (0,
# 0.0625, ..., 1); label 0..9. Split: train_test_split(test_size=0.25, stratify=y,
# random_state=0); rows in load_digits() order. README.md beside this script has
# the details, the sha256 and the reference accuracies. Runs in the project's venv
# (deploy/python-env.sh, set up on first use: needs PyPI once).
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
fail_usage() {
  echo "digits.sh: $*" >&2
  echo "usage: deploy/datasets/digits.sh [--check | --reference] DIR   (-h for help)" >&2
  exit 2
}

command=write
case "${1:-}" in
  -h | --help)
    usage
    exit 0
    ;;
  --check)
    command=check
    shift
    ;;
  --reference)
    command=reference
    shift
    ;;
  -*) fail_usage "unknown option '$1'" ;;
esac
[ $# -ge 1 ] || fail_usage "no DIR given"
[ $# -eq 1 ] || fail_usage "one DIR expected, got $#: $*"
[ -n "$1" ] || fail_usage "DIR is empty"
dir="$1"

ensure_writable_dir() {
  if [ -e "$dir" ] && [ ! -d "$dir" ]; then
    echo "digits.sh: $dir exists and is not a directory" >&2
    exit 1
  fi
  mkdir -p -- "$dir" 2>/dev/null || {
    echo "digits.sh: cannot create directory $dir" >&2
    exit 1
  }
  # -w says yes to root on a read-only file system: try a real file instead.
  local probe
  probe="$(mktemp -p "$dir" .digits-probe.XXXXXX 2>/dev/null)" || {
    echo "digits.sh: cannot write in $dir" >&2
    exit 1
  }
  rm -f -- "$probe"
}

# DIR is checked first, so a bad one is told before any Python setup.
write_first=false
case "$command" in
  write) ensure_writable_dir ;;
  check)
    [ -d "$dir" ] || {
      echo "digits.sh: $dir is not a directory" >&2
      exit 1
    }
    ;;
  reference)
    if [ ! -f "$dir/digits-train.csv" ] || [ ! -f "$dir/digits-test.csv" ]; then
      ensure_writable_dir
      write_first=true
    fi
    ;;
esac

here="$(cd "$(dirname "$0")" && pwd)"
python="$("$here/../python-env.sh" | tail -n 1)" || {
  echo "digits.sh: could not set up the Python environment (deploy/python-env.sh failed)" >&2
  exit 1
}
# One BLAS thread: the reference models then compute the same figures on any machine size.
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

if $write_first; then
  "$python" "$here/digits.py" write "$dir" >&2
fi
exec "$python" "$here/digits.py" "$command" "$dir"
