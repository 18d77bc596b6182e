"""The diffusers engine's speed and memory settings: parsed from a factory string's options,
applied to the pipeline once at setup, and (VAE tiling, cache state) before each job.

    videoqueue.engines.diffusers:load?family=wan21&path=/weights/…&attention=auto&compile=blocks

docs/engines.md ("Speed and memory") says what each option costs and saves.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, TypeVar

import torch
from PIL import Image

from videoqueue.engines.base import EngineError

TILING = ("auto", "on", "off")
TILE_FROM_SIDE = 720
"""`vae_tiling=auto` tiles frames whose short side is at least this (720p and above)."""

OFFLOAD = ("none", "model", "sequential", "group")
COMPILE = ("off", "blocks")
CACHE = ("none", "fbc", "taylorseer")
VAE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}

ATTENTION = {
    "native": "native",
    "sdpa": "native",
    "cudnn": "_native_cudnn",
    "flash": "flash",
    "flash3": "_flash_3",
    "sage": "sage",
    "xformers": "xformers",
}
"""The operator's names for diffusers' attention backends (`AttentionBackendName`). Its
`*_hub` backends are left out: they download kernels at setup."""

AUTO_ATTENTION = (("flash3", (9, 0)), ("flash", (8, 0)), ("sage", (8, 0)), ("cudnn", (8, 0)))
"""What `attention=auto` tries on CUDA, best first, each with the compute capability it needs;
then `native` (PyTorch's SDPA), which runs anywhere."""

WARM_UP_SIZES = ((96, 64, 17), (64, 64, 9))
"""Width, height and frames of the compile warm-up calls: legal for Wan (multiples of 16,
4k+1 frames) and LTX (32, 8k+1). Two sizes of unequal sides, because torch.compile
specialises its first graph on sizes that happen to be equal and recompiles once at the
next size; after the second the graph served every size tried (measured on the CPU)."""

DENOISERS = ("transformer", "transformer_2")

TAYLORSEER_MODULES = r"(transformer_)?blocks\.\d+\.attn\d*"
"""The attention modules TaylorSeer predicts between full steps. diffusers' default patterns
(`^blocks.*attn`, matched whole) match no Wan module (`blocks.0.attn1`) and cache nothing."""

Number = TypeVar("Number", int, float)


@dataclass(frozen=True)
class Speed:
    """How a bound model trades memory for speed; the defaults suit a card that holds it."""

    vae_tiling: str = "auto"
    offload: str = "none"
    attention: str = "auto"
    compile: str = "off"
    cache: str = "none"
    cache_threshold: float = 0.05
    cache_interval: int = 5
    vae_dtype: str = "float32"

    @classmethod
    def parse(cls, options: Mapping[str, str]) -> Speed:
        """The settings in a factory string's `options` (strings; empty means the default)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise EngineError(
                f"unknown diffusers engine option {', '.join(map(repr, unknown))}; "
                f"known: family, path, device, steps, guidance, {', '.join(sorted(known))}"
            )
        given = {name: value for name, value in options.items() if value != ""}
        default = cls()
        speed = cls(
            vae_tiling=_choice(given, "vae_tiling", TILING, default.vae_tiling),
            offload=_choice(given, "offload", OFFLOAD, default.offload),
            attention=_choice(given, "attention", ("auto", *ATTENTION), default.attention),
            compile=_choice(given, "compile", COMPILE, default.compile),
            cache=_choice(given, "cache", CACHE, default.cache),
            cache_threshold=_number(given, "cache_threshold", float, default.cache_threshold),
            cache_interval=_number(given, "cache_interval", int, default.cache_interval),
            vae_dtype=_choice(given, "vae_dtype", tuple(VAE_DTYPES), default.vae_dtype),
        )
        speed._check_combination(given)
        return speed

    def _check_combination(self, given: Mapping[str, str]) -> None:
        if self.cache_interval < 1:
            raise EngineError("cache_interval must be a whole number of steps, 1 or more")
        if "cache_threshold" in given and self.cache != "fbc":
            raise EngineError("cache_threshold applies to cache=fbc only")
        if "cache_interval" in given and self.cache != "taylorseer":
            raise EngineError("cache_interval applies to cache=taylorseer only")
        if self.compile != "off" and self.cache != "none":
            # Measured: the cache's per-step decision breaks the compiled graph.
            raise EngineError(
                "compile=blocks does not combine with a step cache: the cache decides per "
                "step whether a block runs, which torch.compile cannot hold in one graph"
            )
        if self.compile != "off" and self.offload != "none":
            raise EngineError(
                "compile=blocks does not combine with offload (untried here): choose one"
            )

    def dtypes(self, device: torch.device) -> dict[str, torch.dtype]:
        """`from_pretrained`'s dtype per component: bf16 on CUDA, the VAE as `vae_dtype`;
        float32 everywhere on the CPU."""
        if device.type != "cuda":
            return {"default": torch.float32}
        return {"default": torch.bfloat16, "vae": VAE_DTYPES[self.vae_dtype]}

    def set_up(self, pipeline: Any, device: torch.device) -> None:
        """Place `pipeline` on `device` (or offload it), choose its attention, add the step
        cache, and compile its repeated blocks with a warm-up, once."""
        # 1. Placement: whole on the card, or offloaded to the CPU between uses.
        backend = self.check(device)
        if device.type == "cuda" and device.index is not None:
            # `cuda:1`: kernels, streams and compiled code default to that card too.
            torch.cuda.set_device(device)
        _place(pipeline, device, self.offload)
        denoisers = [d for d in (getattr(pipeline, n, None) for n in DENOISERS) if d is not None]

        # 2. Attention backend, for every denoiser.
        for denoiser in denoisers:
            denoiser.set_attention_backend(ATTENTION[backend])

        # 3. Step cache.
        if self.cache != "none":
            for denoiser in denoisers:
                denoiser.enable_cache(self._cache_config())

        # 4. Regional compile, then the calls that compile it, so no job pays for that.
        if self.compile == "blocks":
            for denoiser in denoisers:
                denoiser.compile_repeated_blocks(fullgraph=True, dynamic=True)
            for width, height, frames in WARM_UP_SIZES:
                _warm_up(pipeline, width, height, frames)

    def check(self, device: torch.device) -> str:
        """Raise `EngineError` unless these settings can run on `device` (before any weights
        are loaded); the attention backend they choose there."""
        if self.offload != "none" and device.type != "cuda":
            raise EngineError(f"offload={self.offload} needs a CUDA device, not {device}")
        if self.attention == "auto":
            if device.type != "cuda":
                return "native"
            capability = torch.cuda.get_device_capability(device)
            for name, needs in AUTO_ATTENTION:
                if capability >= needs and attention_missing(name) is None:
                    return name
            return "native"
        if ATTENTION[self.attention] != "native" and device.type != "cuda":
            raise EngineError(f"attention={self.attention} needs a CUDA device, not {device}")
        missing = attention_missing(self.attention)
        if missing is not None:
            raise EngineError(f"attention={self.attention} cannot be used: {missing}")
        return self.attention

    def before_job(self, pipeline: Any, width: int, height: int) -> None:
        """Per job: VAE tiling for the job's frame size, and a cache emptied of the last
        job's steps (a cancelled run leaves them behind)."""
        tiled = self.vae_tiling == "on" or (
            self.vae_tiling == "auto" and min(width, height) >= TILE_FROM_SIDE
        )
        if tiled:
            pipeline.vae.enable_tiling()
        else:
            pipeline.vae.disable_tiling()
        if self.cache != "none":
            for name in DENOISERS:
                denoiser = getattr(pipeline, name, None)
                if denoiser is not None:
                    denoiser._reset_stateful_cache()

    def _cache_config(self) -> Any:
        from diffusers import FirstBlockCacheConfig, TaylorSeerCacheConfig

        if self.cache == "fbc":
            return FirstBlockCacheConfig(threshold=self.cache_threshold)
        return TaylorSeerCacheConfig(
            cache_interval=self.cache_interval, cache_identifiers=[TAYLORSEER_MODULES]
        )


def attention_missing(name: str) -> str | None:
    """What the library behind the operator's attention name `name` lacks (diffusers' own
    words, with the version it needs), or None when it is installed."""
    # diffusers' check of the package and its version floor (private; diffusers is pinned).
    from diffusers.models.attention_dispatch import (
        AttentionBackendName,
        _check_attention_backend_requirements,
    )

    try:
        _check_attention_backend_requirements(AttentionBackendName(ATTENTION[name]))
    except RuntimeError as exc:
        return str(exc)
    return None


def _choice(given: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = given.get(name, default).lower()
    if value not in allowed:
        raise EngineError(f"{name}={given[name]!r} is not one of {', '.join(allowed)}")
    return value


def _number(given: Mapping[str, str], name: str, kind: type[Number], default: Number) -> Number:
    if name not in given:
        return default
    try:
        value = kind(given[name])
    except ValueError:
        raise EngineError(f"{name}={given[name]!r} is not a number") from None
    if not 0 <= value < float("inf"):
        raise EngineError(f"{name}={given[name]!r} must be a finite number, 0 or more")
    return value


def _place(pipeline: Any, device: torch.device, offload: str) -> None:
    if offload == "none":
        pipeline.to(device)
    elif offload == "model":
        pipeline.enable_model_cpu_offload(device=device)
    elif offload == "sequential":
        pipeline.enable_sequential_cpu_offload(device=device)
    else:
        # Leaf level with a CUDA stream: each layer is fetched while the previous one runs,
        # the setup of diffusers' Wan guide (pinned copies want about 2x the model in RAM).
        pipeline.enable_group_offload(
            onload_device=device, offload_type="leaf_level", use_stream=True
        )


def _warm_up(pipeline: Any, width: int, height: int, frames: int) -> None:
    """One denoising step at this size, with the images the pipeline takes."""
    extra: dict[str, Any] = {}
    grey = Image.new("RGB", (width, height), (128, 128, 128))
    if "image" in inspect.signature(pipeline.__call__).parameters:
        extra["image"] = grey
    # Wan's first-last-frame transformer embeds two images (a position for each).
    if getattr(pipeline.transformer.config, "pos_embed_seq_len", None):
        extra["last_image"] = grey
    # Two experts (Wan 2.2 A14B) split the steps at their boundary: two steps reach both.
    steps = 2 if getattr(pipeline, "transformer_2", None) is not None else 1
    pipeline(
        prompt="warm-up",
        width=width,
        height=height,
        num_frames=frames,
        num_inference_steps=steps,
        output_type="latent",
        **extra,
    )
