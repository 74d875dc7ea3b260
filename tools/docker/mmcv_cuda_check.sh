#!/usr/bin/env bash
# Compile mmcv's ops with FORCE_CUDA=1 from its sdist against the Python's CUDA torch and run
# a few of them on the GPU: the step of docker/Dockerfile that no CPU machine can check.
#   tools/docker/mmcv_cuda_check.sh mmcv-2.1.0.tar.gz [TORCH_CUDA_ARCH_LIST]
# Needs nvcc, a CUDA torch, ninja, setuptools < 81 and mmengine importable (PYTHONPATH is kept).
# Run on an H200 (nvcc 13.0, torch 2.11.0+cu130, arch 9.0, 16 cores): built in 264 s; nms,
# roi_align and modulated deformable convolution (forward and backward) ran on the GPU (a
# second run: 247 s).
set -uo pipefail
sdist=$(realpath "${1:?usage: mmcv_cuda_check.sh MMCV_SDIST [ARCH_LIST]}")
arch=${2:-9.0}
log=${OUT:-$(mktemp -d)}/mmcv_cuda_build.log
work=$(mktemp -d)
nvcc --version | tail -1
tar xzf "$sdist" -C "$work" && cd "$work"/mmcv-* || exit 1
start=$(date +%s)
MMCV_WITH_OPS=1 FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST=$arch MAX_JOBS=${MAX_JOBS:-$(nproc)} \
    python3 setup.py build_ext --inplace > "$log" 2>&1
rc=$?
echo "[mmcv_cuda_check] build rc=$rc in $(( $(date +%s) - start )) s (log: $log)"
[ $rc -eq 0 ] || { grep -n " error" "$log" | head -30; exit $rc; }
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" python3 - <<'PY'
import torch
from mmcv.ops import ModulatedDeformConv2dPack, nms, roi_align

boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], dtype=torch.float32, device="cuda")
_, keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7], device="cuda"), 0.5)
assert keep.tolist() == [0, 2], keep
feat = torch.randn(1, 4, 32, 32, device="cuda")
rois = torch.tensor([[0, 2, 2, 20, 20]], dtype=torch.float32, device="cuda")
out = roi_align(feat, rois, (7, 7), 1.0, 0, "avg", True)
assert out.shape == (1, 4, 7, 7) and torch.isfinite(out).all()
dcn = ModulatedDeformConv2dPack(4, 8, 3, padding=1).cuda()
dcn(feat).sum().backward()
assert dcn.weight.grad.abs().sum() > 0
print("[mmcv_cuda_check] nms, roi_align, DCNv2 forward/backward ran on", torch.cuda.get_device_name())
PY
