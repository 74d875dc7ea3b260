# The Swin Transformer backbones of the Co-DETR / BRS-DETR Swin configs, in mmdet 3.x's
# SwinTransformer (the official configs use Co-DETR's own SwinTransformerV1 with the same
# settings: Sense-X/Co-DETR projects/configs/co_deformable_detr/
# co_deformable_detr_swin_{tiny,large}_1x_coco.py).  Weights: the Swin authors' release, the
# URLs mmdet 3.x's own Swin configs use (e.g. configs/dino/dino-5scale_swin-l_8xb2-12e_coco.py).
# out_indices (1, 2, 3): stages 2-4 feed the ChannelMapper, as the ResNet-50's C3-C5.
swin_t = dict(
    _delete_=True,
    type='SwinTransformer',
    pretrain_img_size=224,
    embed_dims=96,
    depths=[2, 2, 6, 2],
    num_heads=[3, 6, 12, 24],
    window_size=7,
    mlp_ratio=4,
    qkv_bias=True,
    qk_scale=None,
    drop_rate=0.0,
    attn_drop_rate=0.0,
    drop_path_rate=0.2,
    patch_norm=True,
    out_indices=(1, 2, 3),
    with_cp=False,
    convert_weights=True,
    init_cfg=dict(
        type='Pretrained',
        checkpoint='https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_tiny_patch4_window7_224.pth',
    ),
)
swin_t_channels = [192, 384, 768]
swin_l = dict(
    _delete_=True,
    type='SwinTransformer',
    pretrain_img_size=384,
    embed_dims=192,
    depths=[2, 2, 18, 2],
    num_heads=[6, 12, 24, 48],
    window_size=12,
    mlp_ratio=4,
    qkv_bias=True,
    qk_scale=None,
    drop_rate=0.0,
    attn_drop_rate=0.0,
    drop_path_rate=0.3,
    patch_norm=True,
    out_indices=(1, 2, 3),
    with_cp=False,
    convert_weights=True,
    init_cfg=dict(
        type='Pretrained',
        checkpoint='https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_large_patch4_window12_384_22k.pth',
    ),
)
swin_l_channels = [384, 768, 1536]
