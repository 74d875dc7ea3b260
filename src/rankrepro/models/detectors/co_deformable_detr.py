"""Co-Deformable-DETR (Zong et al., "DETRs with Collaborative Hybrid Assignments Training",
ICCV 2023) in mmdet 3.x, on mmdet's :class:`~mmdet.models.detectors.DeformableDETR`.

What it adds to Deformable DETR (two-stage, with box refinement), each checked against the
official mmdet 2.x code (Sense-X/Co-DETR, ``projects/models/co_detr.py``,
``co_deformable_detr_head.py``, ``transformer.py``):

* **Mixed query selection** (``mixed_selection=True``, from H-Deformable-DETR / DINO): the
  top-``num_queries`` encoder proposals give the reference boxes and the positional queries
  (``pos_trans_fc`` / ``pos_trans_norm`` of the proposals' sine embedding, first half) but
  the content queries are a learned embedding (``query_embedding``, num_queries x C), as
  the official ``CoDeformableDetrTransformer.forward``.
* **Look forward twice** in the decoder's box refinement (``look_forward_twice=True``):
  :class:`~rankrepro.models.layers.CoDeformableDetrTransformerDecoder`.
* **Collaborative auxiliary heads** (paper Sec. 3.2, Eq. 4): they run on the *encoder's
  output* reshaped into the feature pyramid of the encoder's levels plus one level made by
  ``downsample`` (3x3 conv, stride 2, GroupNorm(32)) from the last one (5 levels, strides
  8-128 for the usual 4 levels), as the official head's ``forward``.  ``aux_rpn_head``
  proposes for the RoI heads (``aux_roi_heads``, e.g. Faster R-CNN's) with
  ``aux_rpn_proposal``; ``aux_dense_heads`` (e.g. ATSS) are one-stage heads.  Each head is a
  config with its own ``train_cfg`` / ``test_cfg``.  Their losses are added to the
  detector's with the head's index appended to every key (``loss_cls0``, ...; RoI heads
  first, then dense heads, as the official ``upd_loss``); the RPN's keep their names.
* **Customised positive queries** (Sec. 3.3, Eq. 5-6): every auxiliary head's ``loss``
  returns ``pos_coords`` besides its losses (see
  :func:`rankrepro.models.dense_heads.co_deformable_detr_head.check_pos_coords`); the
  head's :meth:`get_aux_targets` turns them into queries, which go through the *same*
  decoder (the encoder memory as value, no encoder pass) in one extra pass per auxiliary
  head: reference boxes = the anchors / proposals, positional and content queries =
  ``aux_pos_trans[k]`` / ``aux_pos_trans_norm[k]`` of the boxes' sine embedding (split in
  two), then ``aux_pos_feats_norm[k](aux_pos_feats_trans[k](feature))`` added to the content
  and ``head_pos_embed[k]`` to the positional query (``with_coord_feat=True``); the head's
  :meth:`loss_aux` computes their losses on every decoder layer (key suffix: the auxiliary
  head's index).
* **Prediction** uses the one-to-one head only (official ``eval_module='detr'``).

Loss weights: the one-to-one head's are its config's; each auxiliary head's are in its own
config (official: lambda_2 * num_decoder_layers = 12 times the loss weights of the
stand-alone heads); the auxiliary queries' are the head's ``lambda_1`` (1.0).

Differences from the official code:

* ``official_head_pos_embed=True`` (default) keeps the official ``head_pos_embed``,
  ``nn.Embedding(num_co_heads, 1, 1, embed_dims)``: its positional arguments make it a
  *scalar* per auxiliary head (the official comment calls it a bug kept for the R-50
  results); ``False`` gives one C-vector per head.  Its other positional arguments
  (``padding_idx=1``, ``max_norm=embed_dims``) have no effect there: the official code reads
  ``head_pos_embed.weight[head_idx]`` directly (no ``forward``, so no renorm and no masked
  gradient) and its ``init_weights`` overwrites the zeroed padding row.  Both forms are
  xavier-initialised, as the official transformer's ``init_weights`` (mmdet 2.x
  ``DeformableDetrTransformer``) initialises every >1-dimensional parameter of the
  transformer; the mixed-selection ``query_embedding`` lives in the official query head,
  not the transformer, and keeps ``nn.Embedding``'s N(0, 1) init, as here.
* The proposals' sine embedding uses ``embed_dims // 2`` frequencies per coordinate, as the
  official ``get_proposal_pos_embed`` (mmdet 3.3's ``DeformableDETR.pre_decoder`` uses a
  fixed 128, so its two-stage mode only works with 256 channels).
* The down-sampling layer and the auxiliary query projections live in the detector (the
  official code has them in the query head and the transformer); the parameter names
  differ accordingly (``downsample``, ``aux_pos_trans``, ``aux_pos_trans_norm``,
  ``aux_pos_feats_trans``, ``aux_pos_feats_norm``, ``head_pos_embed``).
* Not ported (no Co-Deformable-DETR config uses them): ``with_attn_mask=False`` (LSJ),
  ``use_zero_padding``, the mask heads of the official ``CoDETR``, and ``eval_module``
  ``'one-stage'`` / ``'two-stage'`` (evaluating an auxiliary head instead of the one-to-one
  head; the configs evaluate ``'detr'``, the one-to-one head, as :meth:`predict` does).
"""
from __future__ import annotations

import copy

import torch
from mmengine.config import ConfigDict
from mmengine.model import ModuleList
from torch import Tensor, nn

from mmdet.models.detectors import DeformableDETR
from mmdet.models.layers import inverse_sigmoid
from mmdet.registry import MODELS
from mmdet.structures import OptSampleList, SampleList

from ..layers import CoDeformableDetrTransformerDecoder


def _suffixed(losses: dict, index: int) -> dict:
    """``losses`` with ``index`` appended to every key (the official ``upd_loss``)."""
    return {f"{key}{index}": value for key, value in losses.items()}


@MODELS.register_module()
class CoDeformableDETR(DeformableDETR):
    """Co-Deformable-DETR (see the module docstring).

    Args:
        mixed_selection (bool): learned content queries with the two-stage reference boxes
            and positional queries (requires ``as_two_stage``).
        look_forward_twice (bool): H-Deformable-DETR's look-forward-twice box refinement.
        aux_rpn_head (dict, optional): RPN head config (with ``train_cfg`` / ``test_cfg``)
            proposing for ``aux_roi_heads``.
        aux_rpn_proposal (dict, optional): the RPN's proposal config while training
            (``nms_pre``, ``max_per_img``, ``nms``, ``min_bbox_size``); default: the RPN
            head's ``test_cfg``.
        aux_roi_heads (list[dict]): RoI head configs (with ``train_cfg`` / ``test_cfg``)
            whose ``loss`` returns ``pos_coords``.
        aux_dense_heads (list[dict]): dense head configs (with ``train_cfg`` /
            ``test_cfg``) whose ``loss`` returns ``pos_coords``.
        with_pos_coord (bool): train the customised positive queries (official default
            True); False: the auxiliary heads' losses only.
        with_coord_feat (bool): add the projected content feature / head embedding to the
            auxiliary queries (official default True).
        official_head_pos_embed (bool): the official scalar ``head_pos_embed`` (see the
            module docstring).
        Other arguments: those of mmdet's ``DeformableDETR``.
    """

    def __init__(
        self,
        *args,
        mixed_selection: bool = True,
        look_forward_twice: bool = True,
        aux_rpn_head: dict | None = None,
        aux_rpn_proposal: dict | None = None,
        aux_roi_heads: list | tuple = (),
        aux_dense_heads: list | tuple = (),
        with_pos_coord: bool = True,
        with_coord_feat: bool = True,
        official_head_pos_embed: bool = True,
        **kwargs,
    ) -> None:
        if mixed_selection and not kwargs.get("as_two_stage", False):
            raise ValueError("mixed_selection needs as_two_stage=True (it mixes the two-stage boxes with learned content queries)")
        if aux_roi_heads and aux_rpn_head is None:
            raise ValueError("aux_roi_heads need an aux_rpn_head to propose for them")
        self.mixed_selection = mixed_selection
        self.look_forward_twice = look_forward_twice
        self.with_pos_coord = with_pos_coord
        self.with_coord_feat = with_coord_feat
        self.official_head_pos_embed = official_head_pos_embed
        self.num_co_heads = len(aux_roi_heads) + len(aux_dense_heads)
        super().__init__(*args, **kwargs)
        self.aux_rpn_head = MODELS.build(ConfigDict(copy.deepcopy(aux_rpn_head))) if aux_rpn_head is not None else None
        if aux_rpn_head is not None:
            self.aux_rpn_proposal = ConfigDict(aux_rpn_proposal) if aux_rpn_proposal is not None else self.aux_rpn_head.test_cfg
        # mmengine's ModuleList (a BaseModule): init_weights reaches the heads' own init_cfg
        self.aux_roi_heads = ModuleList([MODELS.build(ConfigDict(copy.deepcopy(cfg))) for cfg in aux_roi_heads])
        self.aux_dense_heads = ModuleList([MODELS.build(ConfigDict(copy.deepcopy(cfg))) for cfg in aux_dense_heads])

    def _init_layers(self) -> None:
        """mmdet's layers, the look-forward-twice decoder, the mixed-selection content
        queries, and the auxiliary heads' down-sampling layer and query projections."""
        decoder_cfg = self.decoder
        super()._init_layers()
        self.decoder = CoDeformableDetrTransformerDecoder(look_forward_twice=self.look_forward_twice, **decoder_cfg)
        c = self.embed_dims
        if self.mixed_selection:
            self.query_embedding = nn.Embedding(self.num_queries, c)
        if self.num_co_heads:
            self.downsample = nn.Sequential(nn.Conv2d(c, c, kernel_size=3, stride=2, padding=1), nn.GroupNorm(32, c))
        if self.num_co_heads and self.with_pos_coord:
            k = self.num_co_heads
            self.aux_pos_trans = nn.ModuleList([nn.Linear(2 * c, 2 * c) for _ in range(k)])
            self.aux_pos_trans_norm = nn.ModuleList([nn.LayerNorm(2 * c) for _ in range(k)])
            if self.with_coord_feat:
                self.aux_pos_feats_trans = nn.ModuleList([nn.Linear(c, c) for _ in range(k)])
                self.aux_pos_feats_norm = nn.ModuleList([nn.LayerNorm(c) for _ in range(k)])
                self.head_pos_embed = nn.Embedding(k, 1 if self.official_head_pos_embed else c)

    def init_weights(self) -> None:
        """mmdet's initialisation plus xavier-uniform for the auxiliary query projections and
        ``head_pos_embed`` (the official transformer's ``init_weights`` does so for every
        parameter of more than one dimension)."""
        super().init_weights()
        if self.num_co_heads and self.with_pos_coord:
            modules = [self.aux_pos_trans]
            if self.with_coord_feat:
                modules += [self.aux_pos_feats_trans, self.head_pos_embed]
            for module in modules:
                for p in module.parameters():
                    if p.dim() > 1:
                        nn.init.xavier_uniform_(p)

    # ----------------------------------------------------------------- transformer
    def forward_transformer(self, img_feats: tuple[Tensor], batch_data_samples: OptSampleList = None, return_memory: bool = False):
        """mmdet's ``forward_transformer``; with ``return_memory`` also the decoder inputs
        (``memory``, ``memory_mask``, ``spatial_shapes``, ``level_start_index``,
        ``valid_ratios`` and the one-to-one queries) that the auxiliary heads and queries
        reuse."""
        encoder_inputs, decoder_inputs = self.pre_transformer(img_feats, batch_data_samples)
        encoder_outputs = self.forward_encoder(**encoder_inputs)
        tmp_dec_in, head_inputs = self.pre_decoder(**encoder_outputs)
        decoder_inputs.update(tmp_dec_in)
        head_inputs.update(self.forward_decoder(**decoder_inputs))
        return (head_inputs, decoder_inputs) if return_memory else head_inputs

    def pre_decoder(self, memory: Tensor, memory_mask: Tensor, spatial_shapes: Tensor) -> tuple[dict, dict]:
        """mmdet's ``pre_decoder`` with mixed query selection and ``embed_dims // 2`` sine
        frequencies (see the module docstring); single-stage: mmdet's."""
        if not self.as_two_stage:
            return super().pre_decoder(memory, memory_mask, spatial_shapes)
        batch_size, _, c = memory.shape
        output_memory, output_proposals = self.gen_encoder_output_proposals(memory, memory_mask, spatial_shapes)
        enc_outputs_class = self.bbox_head.cls_branches[self.decoder.num_layers](output_memory)
        enc_outputs_coord_unact = self.bbox_head.reg_branches[self.decoder.num_layers](output_memory) + output_proposals
        topk = torch.topk(enc_outputs_class[..., 0], self.num_queries, dim=1)[1]
        topk_coords_unact = torch.gather(enc_outputs_coord_unact, 1, topk.unsqueeze(-1).repeat(1, 1, 4)).detach()
        pos_trans_out = self.pos_trans_norm(self.pos_trans_fc(self.get_proposal_pos_embed(topk_coords_unact, num_pos_feats=c // 2)))
        query_pos, query = torch.split(pos_trans_out, c, dim=2)
        if self.mixed_selection:
            query = self.query_embedding.weight.unsqueeze(0).expand(batch_size, -1, -1)
        decoder_inputs = dict(query=query, query_pos=query_pos, memory=memory, reference_points=topk_coords_unact.sigmoid())
        head_inputs = (
            dict(enc_outputs_class=enc_outputs_class, enc_outputs_coord=enc_outputs_coord_unact.sigmoid()) if self.training else dict()
        )
        return decoder_inputs, head_inputs

    def aux_feature_pyramid(self, memory: Tensor, spatial_shapes: Tensor) -> list[Tensor]:
        """The encoder memory (bs, sum H_l W_l, C) as a pyramid (bs, C, H_l, W_l) plus the
        ``downsample`` of its last level (the official head's ``forward``)."""
        bs, _, c = memory.shape
        pyramid, start = [], 0
        for h, w in spatial_shapes.tolist():
            pyramid.append(memory[:, start : start + h * w].permute(0, 2, 1).reshape(bs, c, h, w))
            start += h * w
        pyramid.append(self.downsample(pyramid[-1]))
        return pyramid

    def aux_queries(self, aux_targets: dict, head_index: int) -> tuple[Tensor, Tensor, Tensor]:
        """Positional query, content query and reference boxes of the customised positive
        queries of auxiliary head ``head_index`` (the official ``forward_aux`` of the
        transformer)."""
        coords = aux_targets["coords"]
        c = self.embed_dims
        pos_trans_out = self.aux_pos_trans_norm[head_index](
            self.aux_pos_trans[head_index](self.get_proposal_pos_embed(inverse_sigmoid(coords), num_pos_feats=c // 2))
        )
        query_pos, query = torch.split(pos_trans_out, c, dim=2)
        if self.with_coord_feat:
            query = query + self.aux_pos_feats_norm[head_index](self.aux_pos_feats_trans[head_index](aux_targets["feats"]))
            query_pos = query_pos + self.head_pos_embed.weight[head_index]
        return query_pos, query, coords

    # ----------------------------------------------------------------- training
    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> dict:
        """One-to-one losses + auxiliary heads' losses + customised positive queries' losses."""
        img_feats = self.extract_feat(batch_inputs)
        head_inputs, decoder_inputs = self.forward_transformer(img_feats, batch_data_samples, return_memory=True)
        losses = self.bbox_head.loss(**head_inputs, batch_data_samples=batch_data_samples)
        if not self.num_co_heads:
            return losses
        pyramid = self.aux_feature_pyramid(decoder_inputs["memory"], decoder_inputs["spatial_shapes"])
        all_pos_coords = []
        if self.aux_rpn_head is not None:
            rpn_data_samples = copy.deepcopy(batch_data_samples)
            for data_sample in rpn_data_samples:
                data_sample.gt_instances.labels = torch.zeros_like(data_sample.gt_instances.labels)
            rpn_losses, rpn_results_list = self.aux_rpn_head.loss_and_predict(pyramid, rpn_data_samples, proposal_cfg=self.aux_rpn_proposal)
            for key in list(rpn_losses):
                if "loss" in key and "rpn" not in key:
                    rpn_losses[f"rpn_{key}"] = rpn_losses.pop(key)
            losses.update(rpn_losses)
        aux_heads = [(head, True) for head in self.aux_roi_heads] + [(head, False) for head in self.aux_dense_heads]
        for index, (head, is_roi) in enumerate(aux_heads):
            head_losses = head.loss(pyramid, rpn_results_list, batch_data_samples) if is_roi else head.loss(pyramid, batch_data_samples)
            pos_coords = head_losses.pop("pos_coords", None)
            if self.with_pos_coord:
                if pos_coords is None:
                    raise ValueError(f"auxiliary head {index} ({type(head).__name__}) returned no 'pos_coords' with its losses")
                all_pos_coords.append(pos_coords)
            losses.update(_suffixed(head_losses, index))
        batch_img_metas = [data_sample.metainfo for data_sample in batch_data_samples]
        for index, pos_coords in enumerate(all_pos_coords):
            aux_targets = self.bbox_head.get_aux_targets(pos_coords, pyramid, batch_img_metas)
            query_pos, query, reference_points = self.aux_queries(aux_targets, index)
            decoder_outputs = self.forward_decoder(
                query=query,
                query_pos=query_pos,
                memory=decoder_inputs["memory"],
                memory_mask=decoder_inputs["memory_mask"],
                reference_points=reference_points,
                spatial_shapes=decoder_inputs["spatial_shapes"],
                level_start_index=decoder_inputs["level_start_index"],
                valid_ratios=decoder_inputs["valid_ratios"],
            )
            losses.update(_suffixed(self.bbox_head.loss_aux(**decoder_outputs, aux_targets=aux_targets, batch_img_metas=batch_img_metas), index))
        return losses
