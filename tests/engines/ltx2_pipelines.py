"""A tiny random LTX-2 pipeline (video and its audio) built in code and saved in diffusers' format.

The configuration is the one measured in /work/shared/notes/tiny-pipelines.md, with a VAE that
keeps the real model's compression but shrinks its encoder and decoder to 8 channels: a 256x256,
25-frame call takes a fraction of a second on the CPU. Sides must be at least 64 (a latent of
one pixel cannot be padded by the decoder).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from diffusers import (
    AutoencoderKLLTX2Audio,
    AutoencoderKLLTX2Video,
    FlowMatchEulerDiscreteScheduler,
    LTX2Pipeline,
    LTX2VideoTransformer3DModel,
)
from diffusers.pipelines.ltx2.connectors import LTX2TextConnectors
from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder
from transformers import (
    Gemma3Config,
    Gemma3ForConditionalGeneration,
    Gemma3TextConfig,
    GemmaTokenizer,
    SiglipVisionConfig,
)

from tests.engines.diffusers_pipelines import SENTENCES

GEMMA_SPECIAL = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]
GEMMA_WIDTH = 32
AUDIO_RATE = 16_000
"""The tiny vocoder's output rate: its upsampling (4 x 4 x 10) equals the mel hop of 160."""


def gemma_tokenizer() -> GemmaTokenizer:
    """A Gemma tokenizer whose vocabulary is the characters of a few sentences (no merges)."""
    characters = sorted({c for s in SENTENCES for c in s.replace(" ", "▁")})
    vocab = {token: i for i, token in enumerate([*GEMMA_SPECIAL, *characters])}
    return GemmaTokenizer(vocab=vocab)


def gemma(vocab_size: int) -> Gemma3ForConditionalGeneration:
    """A two-layer Gemma 3 whose image tokens take the ids after the text vocabulary."""
    text = Gemma3TextConfig(
        vocab_size=vocab_size + 3,
        hidden_size=GEMMA_WIDTH,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=1024,
        sliding_window=64,
    )
    vision = SiglipVisionConfig(
        hidden_size=16,
        intermediate_size=37,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=16,
        patch_size=4,
    )
    config = Gemma3Config(
        text_config=text,
        vision_config=vision,
        mm_tokens_per_image=4,
        boi_token_index=vocab_size,
        eoi_token_index=vocab_size + 1,
        image_token_index=vocab_size + 2,
    )
    return Gemma3ForConditionalGeneration(config)


def tiny_connectors(**config: Any) -> LTX2TextConnectors:
    """LTX-2.0's text connectors, tiny unless `config` says otherwise."""
    defaults: dict[str, Any] = {
        "caption_channels": GEMMA_WIDTH,
        "text_proj_in_factor": 3,
        "video_connector_num_attention_heads": 4,
        "video_connector_attention_head_dim": 8,
        "video_connector_num_layers": 1,
        "video_connector_num_learnable_registers": None,
        "audio_connector_num_attention_heads": 4,
        "audio_connector_attention_head_dim": 8,
        "audio_connector_num_layers": 1,
        "audio_connector_num_learnable_registers": None,
        "connector_rope_base_seq_len": 32,
        "rope_theta": 10000.0,
        "rope_double_precision": False,
        "causal_temporal_positioning": False,
        "rope_type": "split",
    }
    connectors: LTX2TextConnectors = LTX2TextConnectors(**{**defaults, **config})
    return connectors


def tiny_video_vae(**config: Any) -> AutoencoderKLLTX2Video:
    """The real 32x spatial, 8x temporal compression (so the 8k+1 frame rule is the real one)
    with 8 channels a block: a 256x256 clip decodes in a fraction of a second."""
    defaults: dict[str, Any] = {
        "latent_channels": 4,
        "block_out_channels": (8, 8, 8, 8),
        "layers_per_block": (1, 1, 1, 1, 1),
        "decoder_block_out_channels": (8, 8, 8),
        "decoder_layers_per_block": (1, 1, 1, 1),
        "spatio_temporal_scaling": (True, True, True, True),
        "decoder_spatio_temporal_scaling": (True, True, True),
        "decoder_inject_noise": (False, False, False, False),
        "upsample_residual": (False, False, False),
        "upsample_factor": (1, 1, 1),
        "timestep_conditioning": False,
        "decoder_causal": False,
        "spatial_compression_ratio": 32,
        "temporal_compression_ratio": 8,
    }
    return AutoencoderKLLTX2Video(**{**defaults, **config})


def tiny_ltx2(**parts: Any) -> Any:
    """An LTX-2 text-to-video pipeline with seeded random weights, `parts` replacing some
    (untyped to mypy, as diffusers' pipelines are)."""
    torch.manual_seed(0)
    tok = gemma_tokenizer()
    transformer = LTX2VideoTransformer3DModel(
        in_channels=4,
        out_channels=4,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=2,
        attention_head_dim=8,
        cross_attention_dim=16,
        audio_in_channels=4,
        audio_out_channels=4,
        audio_num_attention_heads=2,
        audio_attention_head_dim=4,
        audio_cross_attention_dim=8,
        num_layers=2,
        qk_norm="rms_norm_across_heads",
        caption_channels=GEMMA_WIDTH,
        rope_double_precision=False,
        rope_type="split",
    )
    audio_vae = AutoencoderKLLTX2Audio(
        base_channels=4,
        output_channels=2,
        ch_mult=(1,),
        num_res_blocks=1,
        attn_resolutions=None,
        in_channels=2,
        resolution=32,
        latent_channels=2,
        norm_type="pixel",
        causality_axis="height",
        dropout=0.0,
        mid_block_add_attention=False,
        sample_rate=AUDIO_RATE,
        mel_hop_length=160,
        is_causal=True,
        mel_bins=8,
    )
    vocoder = LTX2Vocoder(
        in_channels=16,
        hidden_channels=32,
        out_channels=2,
        upsample_kernel_sizes=[8, 8, 20],
        upsample_factors=[4, 4, 10],
        resnet_kernel_sizes=[3],
        resnet_dilations=[[1, 3, 5]],
        output_sampling_rate=AUDIO_RATE,
    )
    defaults: dict[str, Any] = {
        "scheduler": FlowMatchEulerDiscreteScheduler(),
        "vae": tiny_video_vae(),
        "audio_vae": audio_vae,
        "text_encoder": gemma(len(tok)),
        "tokenizer": tok,
        "connectors": tiny_connectors(),
        "transformer": transformer,
        "vocoder": vocoder,
    }
    return LTX2Pipeline(**{**defaults, **parts})


def save_tiny_ltx2(folder: Path) -> Path:
    """`folder` holding a tiny LTX-2 pipeline, as a user's download of Lightricks/LTX-2 would."""
    tiny_ltx2().save_pretrained(folder)
    return folder
