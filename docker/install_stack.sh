#!/usr/bin/env bash
# Install the reproduction stack into a new venv from a wheelhouse, without an index: the
# builder stage of both images runs exactly this (docker/Dockerfile and docker/Dockerfile.cpu),
# so the two install the same packages by the same commands; only the wheelhouse differs.
#
#   install_stack.sh VENV WHEELHOUSE PINS STACK [EXTRA_PACKAGE...]
#
# PINS (requirements/pins.txt) is the constraints file: the versions are set there only.
# mmcv comes from the wheelhouse as a wheel (CPU: built by tools/install_mmcv.sh) or as its
# source distribution, which is then compiled here against the installed torch with its ops
# (MMCV_WITH_OPS=1; FORCE_CUDA and TORCH_CUDA_ARCH_LIST come from the builder's environment).
set -euo pipefail
venv=${1:?usage: install_stack.sh VENV WHEELHOUSE PINS STACK [EXTRA...]}
wheels=${2:?wheelhouse}
pins=${3:?constraints file}
stack=${4:?package list}
shift 4

python3.11 -m venv "$venv"
install=("$venv/bin/python" -m pip --disable-pip-version-check --no-cache-dir install
         --no-index --find-links "$wheels" -c "$pins")
# torch first: mmcv's build (when it is built) imports it
"${install[@]}" setuptools numpy torch
MMCV_WITH_OPS=1 "${install[@]}" --no-build-isolation mmcv
"${install[@]}" -r "$stack" "$@"
# (the imports are checked in the runtime stage, which has the system libraries opencv loads)
