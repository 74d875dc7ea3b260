"""The mmdet 3.x plugin: ranking-loss modules, heads and hooks registered in mmdet's registries.

Load it from a config with ``custom_imports = dict(imports=['rankrepro.models'],
allow_failed_imports=False)``.
"""
from . import losses  # noqa: F401  (registers the loss modules)
from .dense_heads import (
    CandidateSwitchATSSHead,
    CoATSSHead,
    CoDeformableDETRHead,
    RankBasedCoATSSHead,
    RankBasedCoDeformableDETRHead,
    RankBasedATSSHead,
    RankBasedPAAHead,
    RankingRetinaHead,
    RankSortSOLOV2Head,
    RankSortYOLACTHead,
    RankSortYOLACTProtonet,
    YOLACTAblationProtonet,
)
from .detectors import CoDeformableDETR, RankSortYOLACT
from .roi_heads import (
    CoStandardRoIHead,
    RankBasedCoStandardRoIHead,
    RankBasedCascadeRoIHead,
    RankBasedFCNMaskHead,
    RankBasedShared2FCBBoxHead,
    RankBasedStandardRoIHead,
)
from .self_balancing import ALRPSelfBalancingHook

__all__ = [
    "ALRPSelfBalancingHook",
    "CandidateSwitchATSSHead",
    "CoDeformableDETR",
    "CoATSSHead",
    "CoDeformableDETRHead",
    "CoStandardRoIHead",
    "RankBasedCoATSSHead",
    "RankBasedCoDeformableDETRHead",
    "RankBasedCoStandardRoIHead",
    "RankBasedATSSHead",
    "RankBasedCascadeRoIHead",
    "RankBasedFCNMaskHead",
    "RankBasedPAAHead",
    "RankBasedShared2FCBBoxHead",
    "RankBasedStandardRoIHead",
    "RankingRetinaHead",
    "RankSortSOLOV2Head",
    "RankSortYOLACT",
    "RankSortYOLACTHead",
    "RankSortYOLACTProtonet",
    "YOLACTAblationProtonet",
]
