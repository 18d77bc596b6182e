"""Reading a job's still images (start, end, references) the way every engine needs them."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageOps

from videoqueue.engines.base import EngineError


def open_image(path: Path, field: str) -> Image.Image:
    """`path` as upright RGB (transparency over black); unreadable input is the client's fault."""
    try:
        with Image.open(path) as opened:
            image = ImageOps.exif_transpose(opened)
            if image.has_transparency_data:
                black = Image.new("RGBA", image.size, (0, 0, 0, 255))
                return Image.alpha_composite(black, image.convert("RGBA")).convert("RGB")
            return image.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise EngineError(
            f"{field}: cannot read {path.name} as an image ({exc})", refundable=False
        ) from exc


def fit(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Scale and centre-crop `image` so it fills `size` exactly."""
    return ImageOps.fit(image, size, method=Image.Resampling.LANCZOS)
