"""Ranking-based losses for object detection, in pure PyTorch (no mmdet import).

Exact AP / aLRP / Rank & Sort losses and the Bucketed paper's BAP / BRS, computed without
a Python loop over positives (see :mod:`rankrepro.losses.step_sums`).  The two passes
over all M logits can run ``torch.compile``d: :func:`set_compiled` or ``RANKREPRO_COMPILE=1``
(see :mod:`rankrepro.losses.passes`).
"""
from .alrp import SelfBalancingWeight, alrp_loss
from .average_precision import ap_loss, bucketed_ap_loss
from .passes import compiled_enabled, set_compiled
from .rank_sort import bucketed_rank_sort_loss, rank_sort_loss

__all__ = [
    "SelfBalancingWeight",
    "alrp_loss",
    "ap_loss",
    "bucketed_ap_loss",
    "bucketed_rank_sort_loss",
    "compiled_enabled",
    "rank_sort_loss",
    "set_compiled",
]
