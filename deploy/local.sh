#!/usr/bin/env bash
# One entry point for a fresh Debian/Ubuntu machine with Swift 6 on PATH.
#
#   deploy/local.sh train [pstrain train flags]   build, then train on a local cluster on loopback
#   deploy/local.sh test                          build, then run every test
#   deploy/local.sh setup                         only install the system packages
#
# Each command first installs what the build needs (libzmq3-dev, libopenblas-dev,
# pkg-config) when it is missing, with apt-get (via sudo when not root); `test` run as root
# also tries to install the tools some tests use (iproute2, nftables, slurm-wlm,
# munge, kubectl, curl, prometheus, librsvg2-bin, mmdebstrap, umoci, runc and, from
# PyPI, kubernetes-validate); `test` also sets up the Python environment .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

install_dependencies() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  local required=()
  command -v pkg-config >/dev/null 2>&1 || required+=(pkg-config)
  pkg-config --exists libzmq 2>/dev/null || required+=(libzmq3-dev)
  pkg-config --exists openblas 2>/dev/null || required+=(libopenblas-dev)
  if ((${#required[@]})); then
    echo "installing ${required[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${required[@]}" >/dev/null
  fi
  if [ "$command" = test ] && [ "$(id -u)" = 0 ]; then
    # Tools some tests use. Each is installed on its own and may be missing: the
    # tests that need it are then reported as skipped, the others still run.
    local optional=()
    # The network chaos tests make namespaces with iproute2 and drop packets with nftables.
    command -v ip >/dev/null 2>&1 || optional+=(iproute2)
    [ -x /usr/sbin/nft ] || optional+=(nftables)
    # The Slurm test runs the batch job on a single-machine Slurm.
    [ -x /usr/sbin/slurmctld ] || optional+=(slurm-wlm)
    [ -x /usr/sbin/munged ] || optional+=(munge)
    # The Kubernetes test renders deploy/k8s with kubectl's kustomize.
    command -v kubectl >/dev/null 2>&1 || optional+=(kubectl)
    # The metrics test scrapes /metrics with curl; the plot test renders SVG with rsvg-convert.
    [ -x /usr/bin/curl ] || optional+=(curl)
    # The metrics tests check every role's output with promtool (Debian package prometheus).
    command -v promtool >/dev/null 2>&1 || optional+=(prometheus)
    [ -x /usr/bin/rsvg-convert ] || optional+=(librsvg2-bin)
    # The container test builds the image with mmdebstrap and umoci and runs it with runc.
    command -v mmdebstrap >/dev/null 2>&1 || optional+=(mmdebstrap)
    command -v umoci >/dev/null 2>&1 || optional+=(umoci)
    command -v runc >/dev/null 2>&1 || optional+=(runc)
    if ((${#optional[@]})); then
      ((${#required[@]})) || timeout 300 apt-get update -qq || true
      for package in "${optional[@]}"; do
        # Bounded: an optional tool must never hold up the tests.
        DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq "$package" >/dev/null 2>&1 \
          || echo "could not install $package; the tests that need it will be skipped" >&2
      done
    fi
    if ! command -v kubernetes-validate >/dev/null 2>&1; then
      # Validates the rendered manifests offline (it bundles the schemas).
      timeout 300 python3 -m pip install --quiet kubernetes-validate >&2 \
        || echo "kubernetes-validate not installed; its test will be skipped" >&2
    fi
  fi
  if ! command -v swift >/dev/null 2>&1; then
    echo "swift is not on PATH: install a Swift 6 toolchain (swift.org) first" >&2
    exit 1
  fi
}

# The container image test (ContainerImageTests): deploy/container/build.sh packs a
# release binary with a static Swift standard library, which shares no compiled module
# with the other builds (--static-swift-stdlib compiles against the static SDK's
# modules), so it gets a scratch path of its own instead of rebuilding .build/release;
# the Debian root comes from mmdebstrap (cached in ~/.cache/pstrain-container).
container_image_test() {
  if [ "$(id -u)" != 0 ] || ! command -v mmdebstrap >/dev/null 2>&1 \
    || ! command -v umoci >/dev/null 2>&1 || ! command -v runc >/dev/null 2>&1; then
    echo "skipping the container image test: it needs root, mmdebstrap, umoci and runc" >&2
    return 0
  fi
  echo "building pstrain with a static Swift standard library for the container image" >&2
  timeout -k 30 1200 swift build -c release --static-swift-stdlib --product pstrain \
    --scratch-path .build/container >&2
  PSTRAIN_CONTAINER_BINARY="$PWD/.build/container/release/pstrain" \
    timeout -k 30 1200 swift test --disable-xctest --filter ContainerImageTests
}

command="${1:-}"
[ $# -gt 0 ] && shift
case "$command" in
  setup)
    install_dependencies
    ;;
  train)
    install_dependencies
    swift build -c release --product pstrain >&2
    exec .build/release/pstrain train "$@"
    ;;
  test)
    install_dependencies
    # The digits test trains on scikit-learn's digits: made once into .build/datasets
    # through the project's Python environment (PyPI, bounded); without them that test
    # is reported as skipped.
    if [ ! -f .build/datasets/digits-test.csv ]; then
      mkdir -p .build/datasets
      timeout 900 deploy/datasets/digits.sh .build/datasets >&2 \
        || echo "could not make the digits files; the digits test will be skipped" >&2
    fi
    export PSTRAIN_DIGITS_DIR="$PWD/.build/datasets"
    # The Python client's tests, the TensorBoard reader test and the JobSet validation
    # run in the project's Python environment (.venv); without it they are skipped.
    timeout 900 deploy/python-env.sh >/dev/null \
      || echo "could not set up .venv; the tests that need Python packages will be skipped" >&2
    swift build --build-tests
    # Every test uses Swift Testing; skipping the empty XCTest pass keeps its
    # "Executed 0 tests" line out of the summary.
    # Tests run one at a time: several start clusters of processes, and 2 cores are
    # better shared by one cluster than by four.
    # Every wait in the tests is bounded; the timeout is a last resort that turns a
    # hang into a failure with the output so far (a run takes about a minute here).
    timeout -k 30 1200 swift test --disable-xctest --no-parallel "$@"
    if [ $# -eq 0 ]; then
      # The hot path's allocation count is a property of the release build: check it there.
      timeout -k 30 900 swift test -c release -Xswiftc -enable-testing --disable-xctest \
        --filter AllocationTests
      # The Python client's tests (codec, errors, a NumPy worker beside a Swift one).
      if [ -x .venv/bin/python ]; then
        timeout -k 30 600 .venv/bin/python -m pytest -q -p no:cacheprovider clients/python/tests
      fi
      container_image_test
    fi
    ;;
  *)
    echo "usage: deploy/local.sh train [flags] | test | setup" >&2
    exit 64
    ;;
esac
