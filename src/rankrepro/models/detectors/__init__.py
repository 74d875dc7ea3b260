"""Detectors of the plugin (registered in ``mmdet.registry.MODELS``)."""
from .co_deformable_detr import CoDeformableDETR
from .rank_sort_yolact import RankSortYOLACT

__all__ = ["CoDeformableDETR", "RankSortYOLACT"]
