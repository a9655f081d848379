#!/usr/bin/env bash
# Builds the pstrain container image as an OCI image layout, with no container engine:
# a minimal Debian bookworm root made by mmdebstrap, the pstrain binary (Swift standard
# library and Foundation linked in statically), packed into two layers by umoci.
#
#   deploy/container/build.sh [options] OUT
#
# Run it as root (mmdebstrap's root mode) or as a user with unprivileged user namespaces
# (mmdebstrap's unshare mode); see docs/container.md for running the image.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: deploy/container/build.sh [options] OUT

Builds the pstrain image as an OCI image layout in the folder OUT (made, or replaced
when it already holds an OCI layout) and tags it "latest" and with pstrain's version
and the git commit (e.g. 0.1.0-gf90fa12). Run it with:
  umoci unpack --image OUT:latest BUNDLE && runc run --bundle BUNDLE ID
or copy it into an engine: skopeo copy oci:OUT:latest containers-storage:pstrain:latest

options:
  --binary PATH    pack this pstrain binary instead of building one; it must link the
                   Swift standard library statically (swift build --static-swift-stdlib)
  --tag TAG        tag the image TAG instead of the default tags (repeatable)
  --mirror URL     Debian mirror (default http://deb.debian.org/debian)
  --cache DIR      keep the Debian root tarball here, keyed by its package list and
                   mirror (default: ${XDG_CACHE_HOME:-$HOME/.cache}/pstrain-container)
  --no-cache       make the Debian root afresh and do not keep it
  -h, --help       print this help

SOURCE_DATE_EPOCH (default: the time of the last git commit) sets every timestamp in
the image, so that two builds from the same packages and binary give the same layers.
EOF
}

say() { echo "build.sh: $*" >&2; }
die() {
  echo "build.sh: error: $*" >&2
  exit 1
}

repository="$(cd "$(dirname "$0")/../.." && pwd)"
binary=""
tags=()
mirror="http://deb.debian.org/debian"
cache="${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/pstrain-container"
use_cache=1
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help)
      usage
      exit 0
      ;;
    --binary | --tag | --mirror | --cache)
      [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value (see --help)"
      case "$1" in
        --binary) binary="$2" ;;
        --tag) tags+=("$2") ;;
        --mirror) mirror="$2" ;;
        --cache) cache="$2" ;;
      esac
      shift 2
      ;;
    --no-cache)
      use_cache=0
      shift
      ;;
    -*) die "unknown option $1 (see --help)" ;;
    *)
      [ -z "$out" ] || die "one OUT folder only, got \"$out\" and \"$1\" (see --help)"
      out="$1"
      shift
      ;;
  esac
done
[ -n "$out" ] || die "missing OUT, the folder for the OCI image layout (see --help)"
if [ -e "$out" ] && [ ! -f "$out/oci-layout" ]; then
  # Replacing OUT deletes it: only ever delete a folder that is an image layout.
  die "$out exists and is not an OCI image layout; give a new folder"
fi
for tag in "${tags[@]}"; do
  [[ "$tag" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "not a valid image tag: \"$tag\""
done
for tool in mmdebstrap umoci tar readelf strip sha256sum; do
  command -v "$tool" >/dev/null 2>&1 \
    || die "$tool is not installed (Debian: apt-get install mmdebstrap umoci tar binutils coreutils)"
done
if [ -n "$binary" ]; then
  [ -f "$binary" ] && [ -x "$binary" ] || die "--binary $binary is not an executable file"
else
  command -v swift >/dev/null 2>&1 || die "swift is not on PATH: install Swift 6 or pass --binary"
fi

# Everything temporary lives in one folder, removed however the script ends.
work="$(mktemp -d "${TMPDIR:-/tmp}/pstrain-image.XXXXXX")"
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH="$(git -C "$repository" log -1 --format=%ct 2>/dev/null || echo 0)"
fi
export SOURCE_DATE_EPOCH
created="$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)"

# 1. The binary.
if [ -z "$binary" ]; then
  # A scratch path of its own: --static-swift-stdlib compiles every module against the
  # static SDK, so sharing .build/release with the usual release build would rebuild both.
  say "building pstrain with a static Swift standard library in .build/container (swift" \
    "build -c release --static-swift-stdlib; about 3 minutes on 2 idle cores the first time) ..."
  (cd "$repository" \
    && swift build -c release --product pstrain --static-swift-stdlib \
      --scratch-path .build/container >&2)
  binary="$repository/.build/container/release/pstrain"
fi
needed="$(readelf -d "$binary" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')"
[ -n "$needed" ] || die "$binary is not a dynamically linked ELF executable"
if grep -E '^lib(swift|Foundation|dispatch|BlocksRuntime|_Foundation|_FoundationICU)' <<<"$needed"; then
  die "$binary links the Swift libraries above dynamically; build it with --static-swift-stdlib"
fi
version="$("$binary" --version 2>/dev/null)" \
  || die "$binary --version failed (it needs libzmq5 and libopenblas0 on this machine too)"
commit="$(git -C "$repository" rev-parse --short HEAD 2>/dev/null || true)"
if [ ${#tags[@]} -eq 0 ]; then
  tags=(latest "$version${commit:+-g$commit}")
fi
say "packing $binary (pstrain $version), which needs: $(echo $needed)"

# 2. The Debian root: what the binary links (libzmq5, OpenBLAS), CA certificates for
# TLS clients, and the user 10001 the image runs as. The "essential" variant has no apt,
# no init and no shell tools beyond Debian's Essential set.
packages="libzmq5,libopenblas0-pthread,ca-certificates"
# Everything the hook does is part of the key: changing it makes a new tarball.
hook='set -e
echo "pstrain:x:10001:10001:pstrain:/home/pstrain:/usr/sbin/nologin" >> "$1/etc/passwd"
echo "pstrain:x:10001:" >> "$1/etc/group"
mkdir -p "$1/home/pstrain" && chown 10001:10001 "$1/home/pstrain"
rm -rf "$1"/var/cache/debconf/*-old "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* \
  "$1"/var/log/*'
key="$(printf '%s\n' bookworm essential "$packages" "$mirror" "$hook" | sha256sum | cut -c1-16)"
rootfs="$cache/rootfs-bookworm-$key.tar"
if [ "$use_cache" = 1 ] && [ -f "$rootfs" ]; then
  say "using the cached Debian root $rootfs (--no-cache makes it afresh)"
else
  say "making the Debian bookworm root with mmdebstrap ($packages, 79 packages from" \
    "$mirror; half a minute to a few minutes, mostly downloading) ..."
  # The merged-usr hook makes the /usr merge itself (the usrmerge package would pull in perl).
  mmdebstrap --variant=essential --include="$packages" --format=tar \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --customize-hook="$hook" \
    bookworm "$work/rootfs.tar" "$mirror" >"$work/mmdebstrap.log" 2>&1 \
    || {
      tail -n 30 "$work/mmdebstrap.log" >&2
      die "mmdebstrap failed (log above)"
    }
  if [ "$use_cache" = 1 ]; then
    mkdir -p "$cache"
    # Renamed into place whole, so an interrupted copy is never taken for a tarball.
    cp "$work/rootfs.tar" "$rootfs.partial.$$" && mv "$rootfs.partial.$$" "$rootfs"
  fi
  rootfs="$work/rootfs.tar"
fi
# Every needed library must be in the root, or the image would fail only when run.
libraries="$(tar -tf "$rootfs")"
for library in $needed; do
  grep -q "/$library\$" <<<"$libraries" \
    || die "the Debian root has no $library, which $binary needs; add its package to \"packages\""
done

# 3. The binary's layer: one file, root-owned, with the fixed timestamp.
mkdir -p "$work/binary/usr/local/bin"
install -m 0755 "$binary" "$work/binary/usr/local/bin/pstrain"
# Without debug info (a release build carries some: 110 MB becomes 87 MB); the symbols stay,
# so a crash's backtrace still names the functions.
strip --strip-debug "$work/binary/usr/local/bin/pstrain"
tar -C "$work/binary" --numeric-owner --owner=0 --group=0 --mtime="@$SOURCE_DATE_EPOCH" \
  -cf "$work/binary.tar" usr/local/bin/pstrain

# 4. The image, built in a new layout next to OUT and moved into place when complete.
layout="$work/layout"
first="${tags[0]}"
say "packing the two layers with umoci (gzip of about 200 MB, under a minute) ..."
umoci init --layout "$layout"
umoci new --image "$layout:$first"
umoci raw add-layer --image "$layout:$first" --history.created "$created" \
  --history.created_by "mmdebstrap --variant=essential --include=$packages bookworm" \
  --history.comment "Debian bookworm root" "$rootfs"
umoci raw add-layer --image "$layout:$first" --history.created "$created" \
  --history.created_by "deploy/container/build.sh" --history.comment "pstrain $version" \
  "$work/binary.tar"
umoci config --image "$layout:$first" --no-history --created "$created" \
  --author "pstrain deploy/container/build.sh" --os linux --architecture amd64 \
  --config.user 10001:10001 --config.workingdir /home/pstrain \
  --config.env PATH=/usr/local/bin:/usr/bin:/bin --config.env HOME=/home/pstrain \
  --config.entrypoint pstrain --config.cmd --help \
  --config.label "org.opencontainers.image.title=pstrain" \
  --config.label "org.opencontainers.image.version=$version" \
  --config.label "org.opencontainers.image.revision=${commit:-unknown}" \
  --config.label "org.opencontainers.image.created=$created"
for tag in "${tags[@]:1}"; do
  umoci tag --image "$layout:$first" "$tag"
done
umoci gc --layout "$layout"
# umoci writes the blobs for its own user only; anyone may read an image.
chmod -R a+rX "$layout"
rm -rf "$out"
mkdir -p "$(dirname "$out")"
mv "$layout" "$out"
size="$(du -sh "$out" | cut -f1)"
say "done: $out ($size compressed), tags: ${tags[*]}"
