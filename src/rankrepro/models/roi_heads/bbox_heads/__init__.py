from .rank_based_bbox_head import RankBasedShared2FCBBoxHead

__all__ = ["RankBasedShared2FCBBoxHead"]
