"""The decoder of Co-Deformable-DETR (Zong et al., "DETRs with Collaborative Hybrid
Assignments Training", ICCV 2023) on mmdet 3.x's Deformable DETR layers.

It is mmdet's :class:`~mmdet.models.layers.DeformableDetrTransformerDecoder` with
H-Deformable-DETR's *look forward twice* (``look_forward_twice=True``), as the official
``CoDeformableDetrTransformerDecoder`` (``projects/models/transformer.py`` of
Sense-X/Co-DETR): layer ``l`` still refines a *detached* reference box
``b_l = sigmoid(reg_l(h_l) + sigmoid^-1(sg(b_{l-1})))`` for the next layer's sampling, but the
reference it returns for layer ``l`` (the one the head adds its offsets to when it predicts
the boxes of layer ``l + 1``) is the undetached ``b_l``, so that the loss of layer ``l + 1``
also trains the regression branch and the queries of layer ``l``.  With
``look_forward_twice=False`` it is mmdet's decoder exactly.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from mmdet.models.layers import DeformableDetrTransformerDecoder, inverse_sigmoid


class CoDeformableDetrTransformerDecoder(DeformableDetrTransformerDecoder):
    """Deformable DETR decoder with ``look_forward_twice`` (see the module docstring).

    Args:
        look_forward_twice (bool): return the undetached refined boxes as the intermediate
            references (H-Deformable-DETR / Co-DETR); ``False``: mmdet's decoder.
        Other arguments: those of ``DeformableDetrTransformerDecoder``.
    """

    def __init__(self, *args, look_forward_twice: bool = False, **kwargs) -> None:
        self.look_forward_twice = look_forward_twice
        super().__init__(*args, **kwargs)

    def forward(
        self,
        query: Tensor,
        query_pos: Tensor,
        value: Tensor,
        key_padding_mask: Tensor,
        reference_points: Tensor,
        spatial_shapes: Tensor,
        level_start_index: Tensor,
        valid_ratios: Tensor,
        reg_branches: nn.ModuleList | None = None,
        **kwargs,
    ) -> tuple[Tensor, Tensor]:
        """Run the decoder layers; arguments and outputs as mmdet's decoder (extra keyword
        arguments, e.g. ``self_attn_mask``, reach every layer).  Returns the stacked
        hidden states (num_layers, bs, num_queries, dim) and the stacked intermediate
        references (num_layers, bs, num_queries, 4 or 2) when ``return_intermediate``, else
        the last of each."""
        output = query
        intermediate, intermediate_reference_points = [], []
        for layer_id, layer in enumerate(self.layers):
            if reference_points.shape[-1] == 4:
                scale = torch.cat([valid_ratios, valid_ratios], -1)[:, None]
            else:
                if reference_points.shape[-1] != 2:
                    raise ValueError(f"reference points must have 2 or 4 coordinates, got {reference_points.shape[-1]}")
                scale = valid_ratios[:, None]
            output = layer(
                output,
                query_pos=query_pos,
                value=value,
                key_padding_mask=key_padding_mask,
                spatial_shapes=spatial_shapes,
                level_start_index=level_start_index,
                valid_ratios=valid_ratios,
                reference_points=reference_points[:, :, None] * scale,
                **kwargs,
            )
            new_reference_points = reference_points
            if reg_branches is not None:
                offsets = reg_branches[layer_id](output)
                if reference_points.shape[-1] == 4:
                    new_reference_points = (offsets + inverse_sigmoid(reference_points)).sigmoid()
                else:
                    new_reference_points = torch.cat(
                        [offsets[..., :2] + inverse_sigmoid(reference_points), offsets[..., 2:]], -1
                    ).sigmoid()
                reference_points = new_reference_points.detach()
            if self.return_intermediate:
                intermediate.append(output)
                intermediate_reference_points.append(
                    new_reference_points if self.look_forward_twice else reference_points
                )
        if self.return_intermediate:
            return torch.stack(intermediate), torch.stack(intermediate_reference_points)
        return output, reference_points
