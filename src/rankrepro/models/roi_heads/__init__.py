"""The R-CNN heads of RS-R-CNN, RS-Cascade R-CNN and RS-Mask R-CNN (RS paper Sec. 6.1.1, 6.2),
and the Focal Loss R-CNN box head of RS paper App. C.5 / Table A.18."""

from .bbox_heads import RankBasedShared2FCBBoxHead, SigmoidShared2FCBBoxHead
from .co_roi_head import CoStandardRoIHead, RankBasedCoStandardRoIHead
from .mask_heads import RankBasedFCNMaskHead
from .rank_based_cascade_roi_head import RankBasedCascadeRoIHead
from .rank_based_roi_head import RankBasedStandardRoIHead

__all__ = [
    "CoStandardRoIHead",
    "RankBasedCoStandardRoIHead",
    "RankBasedCascadeRoIHead",
    "RankBasedFCNMaskHead",
    "RankBasedShared2FCBBoxHead",
    "RankBasedStandardRoIHead",
    "SigmoidShared2FCBBoxHead",
]
