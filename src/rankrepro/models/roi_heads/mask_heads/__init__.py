from .rank_based_mask_head import RankBasedFCNMaskHead

__all__ = ["RankBasedFCNMaskHead"]
