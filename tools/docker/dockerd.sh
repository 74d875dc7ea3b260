#!/usr/bin/env bash
# Start a Docker daemon if none answers (CI machines have no systemd; as root, Debian's
# docker.io is installed first when dockerd is missing).  Its log goes to
# $RANKREPRO_CACHE/docker/dockerd.log; it keeps running after this script ends so that later
# steps (tests/test_docker.py) can use it.
set -euo pipefail
source "$(dirname "$0")/common.sh"

if docker info >/dev/null 2>&1; then
    log "dockerd already running"
    exit 0
fi
command -v dockerd >/dev/null || apt_install docker.io
[ "$(id -u)" = 0 ] || die "no Docker daemon answers and starting one needs root"
log "starting dockerd (log: $DOCKER_CACHE/dockerd.log)"
nohup dockerd >"$DOCKER_CACHE/dockerd.log" 2>&1 &
for _ in $(seq 60); do
    docker info >/dev/null 2>&1 && { log "dockerd up"; exit 0; }
    sleep 1
done
tail -n 20 "$DOCKER_CACHE/dockerd.log" >&2
die "dockerd did not answer within 60 s"
