"""Tiny random Wan pipelines built in code (nothing downloaded) and saved in diffusers' format.

The configurations are those measured in /work/shared/notes/tiny-pipelines.md: a 64x64, 9-frame
call takes a fraction of a second on the CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
from diffusers import (
    AutoencoderKLWan,
    FlowMatchEulerDiscreteScheduler,
    WanImageToVideoPipeline,
    WanPipeline,
    WanTransformer3DModel,
)
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import (
    CLIPImageProcessor,
    CLIPVisionConfig,
    CLIPVisionModel,
    PreTrainedTokenizerFast,
    UMT5Config,
    UMT5EncoderModel,
)

WanKind = Literal["t2v", "i2v", "flf2v", "a14b-t2v", "a14b-i2v", "ti2v"]
"""Wan 2.1 (`t2v`, `i2v`, `flf2v`), Wan 2.2 A14B with two experts, and Wan 2.2 TI2V-5B."""
SENTENCES = [
    "a cat walks on the beach at sunset",
    "a red car drives through a city at night",
    "waves crash on rocks under a grey sky",
]
IMAGE_SIZE = 32
BOUNDARY_RATIO = 0.875
"""Where A14B hands over to its low-noise expert; with 2 steps, step 0 is the first expert's."""


def tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer trained in memory on a few sentences."""
    model = Tokenizer(models.WordLevel(unk_token="<unk>"))
    model.pre_tokenizer = pre_tokenizers.Whitespace()
    model.train_from_iterator(
        SENTENCES, trainers.WordLevelTrainer(special_tokens=["<pad>", "</s>", "<unk>"])
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=model, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )


def text_encoder(vocab_size: int, **config: Any) -> UMT5EncoderModel:
    """A UMT5 encoder, tiny unless `config` says otherwise."""
    defaults: dict[str, Any] = {
        "d_model": 32,
        "d_kv": 8,
        "d_ff": 37,
        "num_layers": 2,
        "num_heads": 4,
        "relative_attention_num_buckets": 8,
        "pad_token_id": 0,
        "eos_token_id": 1,
    }
    return UMT5EncoderModel(UMT5Config(vocab_size=vocab_size, **{**defaults, **config}))


def tiny_wan_transformer(**config: Any) -> WanTransformer3DModel:
    defaults: dict[str, Any] = {
        "patch_size": (1, 2, 2),
        "num_attention_heads": 2,
        "attention_head_dim": 12,
        "in_channels": 16,
        "out_channels": 16,
        "text_dim": 32,
        "freq_dim": 256,
        "ffn_dim": 32,
        "num_layers": 2,
        "cross_attn_norm": True,
        "qk_norm": "rms_norm_across_heads",
        "rope_max_seq_len": 32,
    }
    return WanTransformer3DModel(**{**defaults, **config})


def tiny_wan_vae() -> AutoencoderKLWan:
    return AutoencoderKLWan(
        base_dim=3,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )


def tiny_wan22_vae() -> AutoencoderKLWan:
    """Wan 2.2's VAE shape: 48 latent channels, 16x spatial compression (a 2x2 patch on top)."""
    return AutoencoderKLWan(
        base_dim=4,
        decoder_base_dim=4,
        z_dim=48,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
        is_residual=True,
        in_channels=12,
        out_channels=12,
        patch_size=2,
        scale_factor_spatial=16,
        scale_factor_temporal=4,
        latents_mean=[0.0] * 48,
        latents_std=[1.0] * 48,
    )


def tiny_wan(kind: WanKind = "t2v") -> Any:
    """A Wan pipeline of `kind` with seeded random weights (diffusers' pipelines are
    untyped to mypy: their methods come from mixins it cannot see through)."""
    torch.manual_seed(0)
    tok = tokenizer()
    parts: dict[str, Any] = {"tokenizer": tok, "text_encoder": text_encoder(len(tok))}
    if kind == "ti2v":
        return WanPipeline(
            transformer=tiny_wan_transformer(in_channels=48, out_channels=48),
            vae=tiny_wan22_vae(),
            scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0),
            expand_timesteps=True,
            **parts,
        )
    parts |= {"vae": tiny_wan_vae(), "scheduler": FlowMatchEulerDiscreteScheduler(shift=7.0)}
    if kind == "t2v":
        return WanPipeline(transformer=tiny_wan_transformer(), **parts)
    if kind in ("a14b-t2v", "a14b-i2v"):
        channels = 16 if kind == "a14b-t2v" else 36
        pipeline = WanPipeline if kind == "a14b-t2v" else WanImageToVideoPipeline
        return pipeline(
            transformer=tiny_wan_transformer(in_channels=channels),
            transformer_2=tiny_wan_transformer(in_channels=channels),
            boundary_ratio=BOUNDARY_RATIO,
            **parts,
        )
    image_tokens = IMAGE_SIZE * IMAGE_SIZE + 1
    transformer = tiny_wan_transformer(
        in_channels=36,
        image_dim=4,
        **({"pos_embed_seq_len": 2 * image_tokens} if kind == "flf2v" else {}),
    )
    encoder = CLIPVisionModel(
        CLIPVisionConfig(
            hidden_size=4,
            projection_dim=4,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=IMAGE_SIZE,
            intermediate_size=16,
            patch_size=1,
        )
    )
    processor = CLIPImageProcessor(crop_size=IMAGE_SIZE, size=IMAGE_SIZE)
    return WanImageToVideoPipeline(
        transformer=transformer, image_encoder=encoder, image_processor=processor, **parts
    )


def save_tiny_wan(folder: Path, kind: WanKind = "t2v") -> Path:
    """`folder` holding a tiny Wan pipeline of `kind`, as a user's download would."""
    tiny_wan(kind).save_pretrained(folder)
    return folder
