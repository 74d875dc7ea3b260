"""Transformer layers of the plugin's detection transformers (not registered: the detectors
build them directly, as mmdet's ``DeformableDETR`` builds its encoder and decoder)."""
from .co_deformable_detr_layers import CoDeformableDetrTransformerDecoder

__all__ = ["CoDeformableDetrTransformerDecoder"]
