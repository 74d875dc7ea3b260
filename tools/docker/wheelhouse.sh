#!/usr/bin/env bash
# Build the wheelhouse an image installs from (`pip install --no-index`), on the host:
# what an offline cluster or a build without registry access needs.
#
#   tools/docker/wheelhouse.sh cpu    # CPU torch build + the cached mmcv wheel (tools/install_mmcv.sh)
#   tools/docker/wheelhouse.sh cuda   # PyPI's torch (CUDA build) + torchvision + mmcv's sdist,
#                                     # which docker/Dockerfile compiles with its CUDA ops
#
# Prints the wheelhouse folder: $RANKREPRO_CACHE/docker/wheelhouse-<variant>-<key>, where the
# key hashes requirements/pins.txt and docker/stack.txt (a pin change makes a new one).  Every
# package in docker/stack.txt and its dependencies, as wheels, at the pinned versions; built
# in a temporary folder and renamed when complete.  The CPU torch wheel comes from the
# indexes pip is configured with: set PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu
# where pip's configuration does not already provide torch==2.13.0+cpu.
set -euo pipefail
source "$(dirname "$0")/common.sh"
variant=${1:?usage: wheelhouse.sh cpu|cuda}
case "$variant" in cpu|cuda) ;; *) die "unknown variant '$variant' (cpu or cuda)";; esac
pins="$ROOT/requirements/pins.txt"
stack="$ROOT/docker/stack.txt"
[ -x "$HOST_PYTHON" ] || die "no host Python at $HOST_PYTHON (run \`make setup\` or set RANKREPRO_HOST_PYTHON)"
"$HOST_PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' \
    || die "$HOST_PYTHON is not Python 3.11 (the images' Python)"

key=$(cat "$pins" "$stack" | sha256sum | cut -c1-12)
out="$DOCKER_CACHE/wheelhouse-$variant-$key"
if [ -f "$out/.complete" ]; then
    echo "$out"
    exit 0
fi

start=$(date +%s)
work=$(mktemp -d "$DOCKER_CACHE/.wheelhouse-$variant.XXXXXX")
trap 'rm -rf "$work"' EXIT
pip=("$HOST_PYTHON" -m pip --disable-pip-version-check)
mmcv_version=$(sed -n 's/^mmcv==//p' "$pins")
torch_version=$(sed -n 's/^torch==//p' "$pins")
grep -v '^\s*\(#\|$\)' "$stack" >"$work/stack.txt"
cp "$pins" "$work/constraints.txt"

if [ "$variant" = cpu ]; then
    # The CPU build of torch (no CUDA libraries) and mmcv's wheel with its CPU ops, built once
    # by tools/install_mmcv.sh against this torch and cached outside git.
    echo "torch==$torch_version+cpu" >>"$work/constraints.txt"
    mmcv_wheel=$(ls "$CACHE/wheels/torch-$torch_version"/mmcv-"$mmcv_version"-cp311-*.whl 2>/dev/null | head -n1 || true)
    [ -n "$mmcv_wheel" ] || die "no cached mmcv $mmcv_version wheel under $CACHE/wheels/torch-$torch_version/ (run \`make setup\`, which builds it with tools/install_mmcv.sh)"
    mkdir "$work/wheels"
    cp "$mmcv_wheel" "$work/wheels/"
    log "pip wheel: docker/stack.txt at the pins (CPU torch)"
    "${pip[@]}" wheel -q -w "$work/wheels" --find-links "$work/wheels" -c "$work/constraints.txt" \
        -r "$work/stack.txt"
else
    # PyPI's torch is the CUDA build (its metadata requires cuda-toolkit 13.0.3);
    # torchvision 0.28.0 requires torch==2.13.0.  mmcv stays a source distribution: the CUDA
    # image's builder stage compiles it with FORCE_CUDA=1 for TORCH_CUDA_ARCH_LIST.
    mkdir "$work/wheels"
    "${pip[@]}" download -q --no-deps --no-binary mmcv -d "$work/wheels" "mmcv==$mmcv_version"
    grep -v '^mmcv$' "$work/stack.txt" >"$work/stack-nommcv.txt"
    log "pip wheel: docker/stack.txt + torchvision + ninja at the pins (CUDA torch)"
    "${pip[@]}" wheel -q -w "$work/wheels" -c "$work/constraints.txt" \
        -r "$work/stack-nommcv.txt" torchvision ninja wheel
    # mmcv's own dependencies (its sdist is built in the image, without an index)
    "${pip[@]}" wheel -q -w "$work/wheels" -c "$work/constraints.txt" addict yapf packaging Pillow
fi
touch "$work/wheels/.complete"
rm -rf "$out"
mv "$work/wheels" "$out"
# older wheelhouses of this variant (other pins) would only grow the cache
for old in "$DOCKER_CACHE/wheelhouse-$variant-"*; do
    [ "$old" = "$out" ] || rm -rf "$old"
done
log "wheelhouse $variant: $(ls "$out" | wc -l) wheels, $(du -sh "$out" | cut -f1), $(( $(date +%s) - start )) s"
echo "$out"
