# Shared settings of the tools/docker/ scripts (sourced, not run).
#
# Everything built here is cached outside the clone, under $RANKREPRO_CACHE/docker
# (default ~/.cache/rankrepro/docker): the Debian base tarball and the wheelhouses.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE="${RANKREPRO_CACHE:-$HOME/.cache/rankrepro}"
DOCKER_CACHE="$CACHE/docker"
# the local Debian base (debootstrap + docker import), passed to the Dockerfiles as BASE
BASE_IMAGE="${RANKREPRO_BASE_IMAGE:-rankrepro/debian:bookworm}"
# the CPU image that tools/docker/build.sh tags and tests/test_docker.py runs
CPU_IMAGE="${RANKREPRO_CPU_IMAGE:-rankrepro:cpu}"
# the host Python 3.11 that downloads and builds the wheelhouse (the project's venv)
HOST_PYTHON="${RANKREPRO_HOST_PYTHON:-$ROOT/.venv/bin/python}"
mkdir -p "$DOCKER_CACHE"

log() { echo "[docker] $*" >&2; }
die() { echo "[docker] error: $*" >&2; exit 1; }

# Install Debian packages a step needs when they are missing (root on Debian/Ubuntu only).
apt_install() {
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null \
        || die "missing $*: install them (Debian: apt-get install -y $*)"
    log "apt-get install -y $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; } \
        || die "apt-get install $* failed"
}
