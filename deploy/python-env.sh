#!/usr/bin/env bash
# The project's Python environment: a virtual environment at .venv in the repo root
# with the pinned packages of deploy/python-requirements.txt (numpy, pyzmq,
# scikit-learn and their dependencies). The dataset scripts and the NumPy baselines
# run in it.
#
#   deploy/python-env.sh        create or update .venv; the last line on stdout is its python
#   deploy/python-env.sh -h     this text
#
# Idempotent: .venv/pstrain-requirements.sha256 holds the hash of the requirements
# file (and the Python version) it was installed from; when that still matches and
# the venv's python runs, nothing is done. Otherwise the venv is created if missing
# (recreated if its python no longer runs) and pip installs the pinned versions.
# Only wheels are accepted, so a platform without them fails at once instead of
# compiling for minutes. Progress goes to stderr.
#
# Environment: PSTRAIN_PYTHON  the interpreter to build the venv from (default python3)
#              PIP_TIMEOUT     seconds pip may take in all (default 900)
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
case "${1:-}" in
  -h | --help)
    usage
    exit 0
    ;;
  "") ;;
  *)
    echo "python-env.sh: unexpected argument '$1' (it takes none; -h for help)" >&2
    exit 2
    ;;
esac

root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv"
requirements="$root/deploy/python-requirements.txt"
stamp="$venv/pstrain-requirements.sha256"
base_python="${PSTRAIN_PYTHON:-python3}"
pip_timeout="${PIP_TIMEOUT:-900}"

fail() {
  echo "python-env.sh: $*" >&2
  exit 1
}

[ -r "$requirements" ] || fail "cannot read $requirements"

# Two scripts setting up at once (say two benchmarks started together) take turns:
# the lock is on this script's own file, so no lock file is left behind.
if command -v flock >/dev/null 2>&1; then
  exec 9<"$0"
  timeout 1200 flock 9 || fail "waited 20 minutes for another python-env.sh to finish"
fi

# What the venv was installed from: the requirements and the interpreter's version.
wanted_stamp() {
  local version
  version="$("$venv/bin/python" -c 'import sys; print(sys.version.split()[0])' 2>/dev/null)" || return 1
  printf '%s python-%s\n' "$(sha256sum <"$requirements" | cut -d' ' -f1)" "$version"
}

if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] \
  && [ "$(cat "$stamp")" = "$(wanted_stamp || true)" ]; then
  echo "$venv/bin/python"
  exit 0
fi

if [ -e "$venv" ] && ! "$venv/bin/python" -c '' >/dev/null 2>&1; then
  # A venv whose interpreter is gone (the base Python was removed or moved): start anew,
  # but only remove what looks like a venv.
  [ -f "$venv/pyvenv.cfg" ] || fail "$venv exists but is not a virtual environment; move it away"
  echo "python-env.sh: $venv/bin/python does not run; recreating the venv" >&2
  rm -rf "$venv"
fi

if [ ! -x "$venv/bin/python" ]; then
  command -v "$base_python" >/dev/null 2>&1 \
    || fail "'$base_python' not found: install Python 3 (3.11 checked) or set PSTRAIN_PYTHON"
  echo "python-env.sh: creating $venv with $("$base_python" --version 2>&1)" >&2
  "$base_python" -m venv "$venv" \
    || fail "'$base_python -m venv $venv' failed (on Debian: apt-get install python3-venv)"
fi

echo "python-env.sh: installing $(grep -c '==' "$requirements") pinned packages from $requirements" >&2
rm -f "$stamp"
if ! timeout "$pip_timeout" "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  --only-binary=:all: --require-virtualenv -r "$requirements" >&2; then
  fail "pip install -r $requirements into $venv failed or took over ${pip_timeout}s (see pip's output above)"
fi
"$venv/bin/python" -c 'import numpy, zmq, sklearn, tensorboard, kubeflow_trainer_api, pytest, yaml' \
  || fail "the packages installed but do not import in $venv"
wanted_stamp >"$stamp" || fail "could not write $stamp"
echo "$venv/bin/python"
