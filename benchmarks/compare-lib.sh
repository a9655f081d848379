# Sourced by benchmarks/compare-ps.sh and benchmarks/compare-model.sh, not run on its
# own: what both need around the two commands they compare. Expects $root (the repo)
# and $script (the caller's name, for messages); sets $pstrain and $python.

pstrain="${PSTRAIN:-$root/.build/release/pstrain}"
python="$("$root/deploy/python-env.sh" | tail -n 1)"

# measured WHAT "FIELD..." COMMAND...: runs COMMAND (at most 10 minutes) and prints the
# FIELDs of the JSON it ends its stdout with, on one line; a failure of either names WHAT.
measured() {
  local what="$1" fields="$2" output values
  shift 2
  output="$(timeout 600 "$@")" || {
    echo "$script: $what failed (see above)" >&2
    return 1
  }
  # shellcheck disable=SC2086 # the fields are words on purpose
  values="$("$python" "$root/benchmarks/numpy/json_fields.py" $fields <<<"$output")" || {
    echo "$script: could not read the JSON of $what (it printed: ${output:0:300})" >&2
    return 1
  }
  paste -sd' ' <<<"$values"
}

# require_pstrain_model SUBCOMMAND...: ends the script with the reason pstrain's part
# is skipped unless $pstrain is built and `pstrain SUBCOMMAND... --help` has --model.
require_pstrain_model() {
  local help
  if [ ! -x "$pstrain" ]; then
    echo "pstrain          skipped: $pstrain is not built (swift build -c release)"
    exit 0
  fi
  # Read whole, not piped into grep -q: an early exit of grep would fail the pipeline.
  help="$("$pstrain" "$@" --help 2>&1 || true)"
  if ! grep -q -- '--model' <<<"$help"; then
    echo "pstrain          skipped: this pstrain has no '$* --model' yet"
    exit 0
  fi
}
