#!/usr/bin/env bash
# Build a reproduction image from a wheelhouse (no index used inside the build).
#
#   tools/docker/build.sh cpu    # local Debian base + CPU wheelhouse -> rankrepro:cpu
#   tools/docker/build.sh cuda   # docker/Dockerfile on its pinned nvidia/cuda bases -> rankrepro:cuda
#                                # (needs registry access for the bases; never built on CI)
#
# Starts dockerd when none answers (root only), makes the base (cpu) and the wheelhouse
# (cached under ~/.cache/rankrepro/docker), hard-links the wheelhouse into docker/wheelhouse/
# for the build context (removed afterwards) and prints the build's time.
set -euo pipefail
source "$(dirname "$0")/common.sh"
variant=${1:?usage: build.sh cpu|cuda}
"$ROOT/tools/docker/dockerd.sh"
case "$variant" in
    cpu)
        "$ROOT/tools/docker/make_base.sh"
        dockerfile=docker/Dockerfile.cpu; tag=$CPU_IMAGE; base_args=(--build-arg "BASE=$BASE_IMAGE") ;;
    cuda)
        dockerfile=docker/Dockerfile; tag=${RANKREPRO_CUDA_IMAGE:-rankrepro:cuda}; base_args=() ;;
    *) die "unknown variant '$variant' (cpu or cuda)" ;;
esac
wheelhouse=$("$ROOT/tools/docker/wheelhouse.sh" "$variant")

cd "$ROOT"
rm -rf docker/wheelhouse
trap 'rm -rf "$ROOT/docker/wheelhouse"' EXIT
cp -al "$wheelhouse" docker/wheelhouse 2>/dev/null || cp -a "$wheelhouse" docker/wheelhouse
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
start=$(date +%s)
log "docker build -f $dockerfile -t $tag"
docker build --force-rm -f "$dockerfile" -t "$tag" "${base_args[@]}" --build-arg "GIT_COMMIT=$commit" \
    ${DOCKER_BUILD_ARGS:-} .
log "built $tag in $(( $(date +%s) - start )) s, $(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}')"
