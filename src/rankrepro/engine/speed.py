"""Test-time speed: images per second of the model's test steps (RS paper Table A.20's fps)."""
from __future__ import annotations

import time

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class TestSpeedHook(Hook):
    """Times every test iteration from ``before_test_iter`` to ``after_test_iter``: the model's
    pre-processing, forward pass and post-processing (NMS) plus the evaluator collecting the
    outputs, not data loading, as mmdet's ``benchmark.py`` counts.  On CUDA the device is
    synchronised at both ends.  ``fps`` = images / summed time, the first ``warmup`` iterations
    left out (kernel selection, caches); all of them when there are no more."""

    priority = "VERY_LOW"

    def __init__(self, warmup: int = 5):
        self.warmup = warmup
        self.times: list[float] = []
        self.images: list[int] = []
        self._start = None

    @staticmethod
    def _sync() -> None:
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()

    def before_test_iter(self, runner, batch_idx, data_batch=None) -> None:
        self._sync()
        self._start = time.perf_counter()

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self._sync()
        self.times.append(time.perf_counter() - self._start)
        self.images.append(len(outputs) if outputs is not None else 1)

    def summary(self) -> dict:
        skip = self.warmup if len(self.times) > self.warmup else 0
        seconds, images = sum(self.times[skip:]), sum(self.images[skip:])
        return {"fps": images / seconds if seconds > 0 else None, "test_images": sum(self.images),
                "timed_images": images, "timed_seconds": seconds}
