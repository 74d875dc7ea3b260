#!/bin/sh
# The images' entrypoint: run Snakemake in the work dir, so that
#   docker run IMAGE --cores all reproduce_table1
# regenerates a table (arguments are Snakemake's).  A first argument naming a command of the
# image (bash, python, rankrepro, snakemake, ls, ...) runs that command instead.
set -e
cd /work
# Any uid may run the image (docker run --user "$(id -u):$(id -g)", Apptainer's own uid):
# give it a writable HOME for the caches Snakemake and matplotlib keep there, and a user name
# (a uid missing from the image's /etc/passwd has none; Snakemake asks for it).
if [ ! -w "${HOME:-/nonexistent}" ]; then
    HOME=$(mktemp -d /tmp/home.XXXXXX)
    export HOME
fi
if ! id -un >/dev/null 2>&1; then
    USER="uid$(id -u)"
    LOGNAME=$USER
    export USER LOGNAME
fi
case "${1:-}" in
    ""|-*) ;;
    *) if command -v "$1" >/dev/null 2>&1; then exec "$@"; fi ;;
esac
exec snakemake "$@"
