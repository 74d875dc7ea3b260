from .rank_based_bbox_head import RankBasedShared2FCBBoxHead
from .sigmoid_bbox_head import SigmoidShared2FCBBoxHead

__all__ = ["RankBasedShared2FCBBoxHead", "SigmoidShared2FCBBoxHead"]
