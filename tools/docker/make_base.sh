#!/usr/bin/env bash
# Make the Debian 12 (bookworm) base image locally, for machines that cannot pull images:
# debootstrap (minbase variant, the package set of the official debian:bookworm-slim) into a
# tarball cached as $RANKREPRO_CACHE/docker/debian-bookworm-minbase.tar, then `docker import`
# tagged rankrepro/debian:bookworm.  Dockerfiles get it as `--build-arg BASE=...`.
#
#   tools/docker/make_base.sh            # reuse the image / tarball if present
#   tools/docker/make_base.sh --rebuild  # debootstrap again (e.g. for Debian point releases)
set -euo pipefail
source "$(dirname "$0")/common.sh"
suite=bookworm
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
security="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
tarball="$DOCKER_CACHE/debian-$suite-minbase.tar"

if [ "${1:-}" = --rebuild ]; then
    rm -f "$tarball"
    docker image rm "$BASE_IMAGE" >/dev/null 2>&1 || true
elif docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    log "$BASE_IMAGE exists"
    exit 0
fi

if [ ! -f "$tarball" ]; then
    command -v debootstrap >/dev/null || apt_install debootstrap
    [ "$(id -u)" = 0 ] || die "debootstrap needs root"
    start=$(date +%s)
    work=$(mktemp -d "$DOCKER_CACHE/.rootfs.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    log "debootstrap --variant=minbase $suite from $mirror"
    debootstrap --variant=minbase "$suite" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
        || { tail -n 30 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
    # APT sources as in the official image: the release, its updates and the security archive.
    rm -f "$work/rootfs/etc/apt/sources.list"
    cat >"$work/rootfs/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
    # No package caches or lists in the base layer (the Dockerfiles run apt-get update).
    rm -rf "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/lib/apt/lists/*
    # Written beside the final name, then renamed: an interrupted run leaves no tarball.
    tar --numeric-owner -C "$work/rootfs" -cf "$work/base.tar" .
    mv "$work/base.tar" "$tarball"
    log "base tarball $(du -h "$tarball" | cut -f1) in $(( $(date +%s) - start )) s: $tarball"
fi

start=$(date +%s)
docker import --change 'CMD ["bash"]' --message "debootstrap --variant=minbase $suite" \
    "$tarball" "$BASE_IMAGE" >/dev/null
log "imported $BASE_IMAGE in $(( $(date +%s) - start )) s"
