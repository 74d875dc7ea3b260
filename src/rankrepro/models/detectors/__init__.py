"""Detectors of the plugin (registered in ``mmdet.registry.MODELS``)."""
from .rank_sort_yolact import RankSortYOLACT

__all__ = ["RankSortYOLACT"]
