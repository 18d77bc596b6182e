"""Still images of a finished MP4: a thumbnail (one frame) and a spritesheet (a grid of frames).

Run in a decoder process (`DecodeSandbox.run`). PyAV and Pillow are imported inside the
functions: the API process imports this module only to name the work it sends there.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

SPRITE_COLUMNS = 5
SPRITE_ROWS = 5
SPRITE_TILE_WIDTH = 160
"""Each tile is a frame scaled to this width, its height kept in proportion (even)."""
THUMBNAIL_QUALITY = 85


def _frames(video: Path, count: int) -> list[Image.Image]:
    """`count` frames spread evenly from the first to the last (fewer if the video has fewer)."""
    import av
    from PIL import Image

    with av.open(str(video), "r") as container:
        stream = container.streams.video[0]
        total = stream.frames or sum(1 for _ in container.decode(stream))
        if not stream.frames:
            container.seek(0)
        last = max(0, total - 1)
        wanted = sorted({round(i * last / max(1, count - 1)) for i in range(count)})
        picked: list[Image.Image] = []
        for index, frame in enumerate(container.decode(stream)):
            if index in wanted:
                picked.append(Image.fromarray(frame.to_ndarray(format="rgb24")))
                if len(picked) == len(wanted):
                    break
    return picked


def thumbnail(video: Path) -> bytes:
    """The middle frame as WebP, at the video's size."""
    frames = _frames(video, 3)
    buffer = io.BytesIO()
    frames[len(frames) // 2].save(buffer, format="WEBP", quality=THUMBNAIL_QUALITY)
    return buffer.getvalue()


def spritesheet(video: Path) -> bytes:
    """`SPRITE_COLUMNS` x `SPRITE_ROWS` frames spread over the video, left to right then top
    to bottom, as one JPEG; tiles past the video's last frame stay black."""
    from PIL import Image

    frames = _frames(video, SPRITE_COLUMNS * SPRITE_ROWS)
    width, height = frames[0].size
    tile_height = max(2, round(SPRITE_TILE_WIDTH * height / width / 2) * 2)
    sheet = Image.new("RGB", (SPRITE_COLUMNS * SPRITE_TILE_WIDTH, SPRITE_ROWS * tile_height))
    for i, frame in enumerate(frames):
        tile = frame.convert("RGB").resize((SPRITE_TILE_WIDTH, tile_height), Image.Resampling.BOX)
        row, column = divmod(i, SPRITE_COLUMNS)
        sheet.paste(tile, (column * SPRITE_TILE_WIDTH, row * tile_height))
    buffer = io.BytesIO()
    sheet.save(buffer, format="JPEG", quality=THUMBNAIL_QUALITY)
    return buffer.getvalue()
