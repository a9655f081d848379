#!/usr/bin/env bash
# One entry point for a fresh Debian/Ubuntu machine with Swift 6 on PATH.
#
#   deploy/local.sh train [pstrain train flags]   build, then train on a local cluster on loopback
#   deploy/local.sh test                          build, then run every test
#   deploy/local.sh setup                         only install the system packages
#
# Each command first installs what the build needs (libzmq3-dev, pkg-config)
# when it is missing, with apt-get (via sudo when not root); `test` run as root
# also installs iproute2 and nftables for the network chaos tests and slurm-wlm
# and munge for the Slurm test.
set -euo pipefail
cd "$(dirname "$0")/.."

install_dependencies() {
  local missing=()
  command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
  pkg-config --exists libzmq 2>/dev/null || missing+=(libzmq3-dev)
  if [ "$command" = test ] && [ "$(id -u)" = 0 ]; then
    # The network chaos tests make namespaces with iproute2 and drop packets with nftables.
    command -v ip >/dev/null 2>&1 || missing+=(iproute2)
    command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || missing+=(nftables)
    # The Slurm test runs the batch job on a single-machine Slurm.
    [ -x /usr/sbin/slurmctld ] || missing+=(slurm-wlm)
    [ -x /usr/sbin/munged ] || missing+=(munge)
    # The Kubernetes test renders deploy/k8s with kubectl's kustomize.
    command -v kubectl >/dev/null 2>&1 || missing+=(kubectl)
    # The metrics test scrapes /metrics with curl.
    [ -x /usr/bin/curl ] || missing+=(curl)
    # The plot test renders the SVG with rsvg-convert.
    [ -x /usr/bin/rsvg-convert ] || missing+=(librsvg2-bin)
  fi
  if ((${#missing[@]})); then
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    echo "installing ${missing[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  if [ "$command" = test ] && ! command -v kubernetes-validate >/dev/null 2>&1; then
    # Validates the rendered manifests offline (it bundles the schemas).
    python3 -m pip install --quiet kubernetes-validate >&2 || echo "kubernetes-validate not installed; its test will be skipped" >&2
  fi
  if ! command -v swift >/dev/null 2>&1; then
    echo "swift is not on PATH: install a Swift 6 toolchain (swift.org) first" >&2
    exit 1
  fi
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
    swift build --build-tests
    # Every test uses Swift Testing; skipping the empty XCTest pass keeps its
    # "Executed 0 tests" line out of the summary.
    # Tests run one at a time: several start clusters of processes, and 2 cores are
    # better shared by one cluster than by four.
    exec swift test --disable-xctest --no-parallel "$@"
    ;;
  *)
    echo "usage: deploy/local.sh train [flags] | test | setup" >&2
    exit 64
    ;;
esac
