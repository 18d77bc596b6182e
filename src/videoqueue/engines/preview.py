"""The `preview` engine: a deterministic CPU renderer that stands in for a generative model.

It draws a seeded, moving scene (or slowly zooms into the given start image), overlays the
prompt, and writes an H.264/AAC MP4 whose bytes depend only on the `JobInput`.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont, ImageOps

from videoqueue.engines.base import EngineError, JobInput, ProgressCallback, VideoInfo
from videoqueue.engines.stills import fit, open_image
from videoqueue.media.mp4 import SAMPLE_RATE, Audio, write_mp4
from videoqueue.media.probe import LOCAL_FILES_ONLY

CROSSFADE_S = 1.0
OVERLAY_FADE_IN_S = 0.5
WHITE = (255, 255, 255)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


class PreviewEngine:
    """Renders a watchable stand-in clip on the CPU in about real time, byte-identical per job."""

    name = "preview"

    def generate(self, job: JobInput, output_path: Path, progress: ProgressCallback) -> VideoInfo:
        # 1. Check inputs and read every media file, so bad input fails before encoding.
        if job.width <= 0 or job.height <= 0 or job.width % 2 or job.height % 2:
            raise EngineError(
                f"width and height must be positive even numbers, got {job.width}x{job.height}",
                refundable=False,
            )
        if job.fps <= 0 or job.frame_count <= 0:
            raise EngineError("fps and the frame count must be positive", refundable=False)
        size = (job.width, job.height)
        n_frames = job.frame_count
        prompt_digest = hashlib.sha256(job.prompt.encode(errors="replace")).digest()
        rng = np.random.default_rng([job.seed % 2**64, int.from_bytes(prompt_digest[:8], "big")])
        media = job.media
        start = fit(open_image(media.image, "image"), size) if media.image else None
        end = fit(open_image(media.end_image, "end_image"), size) if media.end_image else None
        references = [open_image(p, "reference_images") for p in media.reference_images]

        # 2. Prepare the soundtrack, the moving picture and the overlay.
        audio: Audio | None = None
        if job.audio:
            n_samples = round(n_frames * SAMPLE_RATE / job.fps)
            audio = (
                _read_audio(media.audio, n_samples)
                if media.audio
                else _synthesize_audio(rng, n_samples)
            )
        picture: _KenBurns | _Scene = (
            _KenBurns(start, rng, n_frames) if start is not None else _Scene(size, rng, job.fps)
        )
        overlay = _Overlay(job, references, n_frames)
        fade_in_frames = OVERLAY_FADE_IN_S * job.fps if start is not None else 0.0
        crossfade_frames = min(round(CROSSFADE_S * job.fps), n_frames - 1) if end is not None else 0

        def frames() -> Iterator[Image.Image]:
            for i in range(n_frames):
                image = picture.frame(i)
                overlay.draw(image, i, min(1.0, i / fade_in_frames) if fade_in_frames else 1.0)
                # Blending after the overlay fades it out, so the last frame is the end image.
                if end is not None and crossfade_frames and i >= n_frames - crossfade_frames:
                    mix = (i - (n_frames - 1 - crossfade_frames)) / crossfade_frames
                    image = Image.blend(image, end, mix)
                yield image

        # 3. Encode and mux frame by frame; only the frames x264 is working on are held.
        try:
            write_mp4(output_path, job.fps, size, n_frames, frames(), audio, progress)
        except BaseException as exc:
            # A failed or cancelled (progress raised) job leaves no half-written file behind.
            output_path.unlink(missing_ok=True)
            if isinstance(exc, av.FFmpegError):
                raise EngineError(f"encoding the preview failed: {exc}") from exc
            raise
        progress(1.0)
        return VideoInfo(
            width=job.width,
            height=job.height,
            fps=float(job.fps),
            duration_s=n_frames / job.fps,
            frames=n_frames,
            has_audio=audio is not None,
        )


def _read_audio(path: Path, n_samples: int) -> Audio:
    """Decode `path` to stereo at `SAMPLE_RATE`, looped or trimmed to `n_samples`."""
    chunks: list[Audio] = []
    have = 0
    try:
        with av.open(str(path), options=LOCAL_FILES_ONLY) as container:
            if not container.streams.audio:
                raise EngineError(f"audio: {path.name} has no audio stream", refundable=False)
            resampler = av.AudioResampler(format="fltp", layout="stereo", rate=SAMPLE_RATE)
            for frame in container.decode(container.streams.audio[0]):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().astype(np.float32))
                    have += out.samples
                if have >= n_samples:
                    break
            else:
                chunks += [out.to_ndarray().astype(np.float32) for out in resampler.resample(None)]
    except av.FFmpegError as exc:
        raise EngineError(
            f"audio: cannot decode {path.name} as audio ({exc})", refundable=False
        ) from exc
    track = np.concatenate(chunks, axis=1) if chunks else np.zeros((2, 0), np.float32)
    if track.shape[1] == 0:
        raise EngineError(f"audio: {path.name} contains no audio samples", refundable=False)
    repeats = math.ceil(n_samples / track.shape[1])
    return np.clip(np.tile(track, (1, repeats))[:, :n_samples], -1.0, 1.0)


def _synthesize_audio(rng: np.random.Generator, n_samples: int) -> Audio:
    """A seeded drone under a pentatonic melody; the drone never stops, so nothing is silent."""
    t = np.arange(n_samples) / SAMPLE_RATE
    root = 110.0 * 2 ** (int(rng.integers(0, 12)) / 12)
    drone_left = 0.12 * np.sin(2 * np.pi * root * t) + 0.07 * np.sin(2 * np.pi * root * 1.5 * t)
    drone_right = 0.12 * np.sin(2 * np.pi * (root + 0.5) * t) + 0.07 * np.sin(
        2 * np.pi * (root * 1.5 - 0.5) * t
    )
    note_s = 0.25
    pentatonic = [0, 2, 4, 7, 9, 12, 14, 16]
    steps = rng.choice(pentatonic, size=math.ceil(n_samples / SAMPLE_RATE / note_s) + 1)
    note = (t / note_s).astype(np.int64)
    # Integrating the frequency keeps the phase continuous across notes, so changes do not click.
    phase = np.cumsum(2 * np.pi * root * 4 * 2 ** (steps[note] / 12) / SAMPLE_RATE)
    envelope = 0.3 + 0.7 * np.sin(np.pi * (t / note_s - note)) ** 2
    melody = 0.15 * envelope * np.sin(phase)
    track = np.stack([drone_left + melody, drone_right + melody])
    ramp = min(n_samples // 2, SAMPLE_RATE // 100)
    if ramp:
        fade = np.linspace(0.0, 1.0, ramp)
        track[:, :ramp] *= fade
        track[:, n_samples - ramp :] *= fade[::-1]
    return track.astype(np.float32)


@dataclass(frozen=True)
class _Shape:
    sides: int  # 0 draws a circle
    radius: float
    color: tuple[int, int, int]
    path: npt.NDArray[np.float64]  # amplitude x/y, angular speed x/y, phase x/y, spin


class _Scene:
    """A seeded plasma background with polygons gliding along Lissajous paths."""

    GRID = (48, 27)

    def __init__(self, size: tuple[int, int], rng: np.random.Generator, fps: int) -> None:
        self.size = size
        self.fps = fps
        gx, gy = np.meshgrid(np.linspace(0, 1, self.GRID[0]), np.linspace(0, 1, self.GRID[1]))
        self.grid = (gx, gy)
        # Spatial frequency, speed and phase of three sine waves.
        low, high = [2.0] * 3 + [0.4] * 3 + [0.0] * 3, [7.0] * 3 + [1.2] * 3 + [6.0] * 3
        self.waves = rng.uniform(low, high)
        self.palette = rng.uniform(0, 1, 3)
        short = min(size)
        self.shapes = [
            _Shape(
                sides=int(rng.choice([0, 3, 4, 5, 6])),
                radius=float(rng.uniform(0.06, 0.14) * short),
                color=_bright_color(rng),
                path=rng.uniform([0.15, 0.15, 0.3, 0.3, 0, 0, -90], [0.4, 0.4, 1.3, 1.3, 6, 6, 90]),
            )
            for _ in range(6)
        ]

    def frame(self, i: int) -> Image.Image:
        t = i / self.fps
        gx, gy = self.grid
        k, s, p = self.waves[0:3], self.waves[3:6], self.waves[6:9]
        value = (
            np.sin(gx * k[0] + t * s[0] + p[0])
            + np.sin(gy * k[1] - t * s[1] + p[1])
            + np.sin((gx + gy) * k[2] + t * s[2] + p[2])
        )
        angle = 2 * np.pi * (value[..., None] / 6 + t * 0.03 + self.palette)
        rgb = (0.5 + 0.35 * np.cos(angle)) * 255
        image = Image.fromarray(rgb.astype(np.uint8), "RGB").resize(
            self.size, Image.Resampling.BILINEAR
        )
        draw = ImageDraw.Draw(image)
        w, h = self.size
        for shape in self.shapes:
            ax, ay, wx, wy, px, py, spin = shape.path
            x = w * (0.5 + ax * math.sin(wx * t + px))
            y = h * (0.5 + ay * math.sin(wy * t + py))
            r = shape.radius * (1 + 0.15 * math.sin(2 * t + px))
            outline = max(1, round(r / 12))
            if shape.sides:
                draw.regular_polygon(
                    (x, y, r),
                    shape.sides,
                    rotation=spin * t,
                    fill=shape.color,
                    outline=WHITE,
                    width=outline,
                )
            else:
                draw.ellipse(
                    (x - r, y - r, x + r, y + r), fill=shape.color, outline=WHITE, width=outline
                )
        return image


def _bright_color(rng: np.random.Generator) -> tuple[int, int, int]:
    red, green, blue = (int(c) for c in rng.integers(40, 256, 3))
    return red, green, blue


class _KenBurns:
    """Zooms slowly from the whole start image towards a seeded point of it."""

    ZOOM = 0.15

    def __init__(self, image: Image.Image, rng: np.random.Generator, n_frames: int) -> None:
        self.image = image
        self.n_frames = n_frames
        self.focus = rng.uniform(0.3, 0.7, 2)

    def frame(self, i: int) -> Image.Image:
        w, h = self.image.size
        u = i / (self.n_frames - 1) if self.n_frames > 1 else 0.0
        u = u * u * (3 - 2 * u)
        bw, bh = w / (1 + self.ZOOM * u), h / (1 + self.ZOOM * u)
        cx = min(max(w / 2 + (self.focus[0] * w - w / 2) * u, bw / 2), w - bw / 2)
        cy = min(max(h / 2 + (self.focus[1] * h - h / 2) * u, bh / 2), h - bh / 2)
        box = (cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2)
        # At i == 0 the box is the whole image, which Pillow returns unresampled.
        return self.image.resize((w, h), Image.Resampling.BILINEAR, box=box)


class _Overlay:
    """The prompt, reference thumbnails and a running caption, drawn over each frame."""

    PROMPT_LINES = 3
    THUMBNAILS = 4

    def __init__(self, job: JobInput, references: Sequence[Image.Image], n_frames: int) -> None:
        w, h = job.width, job.height
        self.job = job
        self.n_frames = n_frames
        self.margin = max(4, h // 40)
        self.patches: list[tuple[tuple[int, int], Image.Image]] = []
        if job.prompt.strip():
            self.patches.append(self._prompt_patch(job.prompt, w, h))
        side = max(16, h // 6)
        for j, reference in enumerate(references[: self.THUMBNAILS]):
            thumb = ImageOps.expand(fit(reference, (side - 4, side - 4)), 2, WHITE)
            x = w - self.margin - (j + 1) * side - j * self.margin // 2
            self.patches.append(((x, self.margin), thumb.convert("RGBA")))
        font_size = max(9, h // 40)
        self.caption_font = ImageFont.load_default(size=font_size)
        self.caption_pad = max(2, font_size // 3)
        # Sized once for the longest caption, so the box does not jitter as the counter grows.
        widest = max(self._caption(0), self._caption(n_frames - 1), key=len)
        self.caption_size = (
            math.ceil(self.caption_font.getlength(widest)) + 3 * self.caption_pad,
            round(font_size * 1.3) + 2 * self.caption_pad,
        )

    def _prompt_patch(self, prompt: str, w: int, h: int) -> tuple[tuple[int, int], Image.Image]:
        size = max(10, h // 22)
        font = ImageFont.load_default(size=size)
        pad = size // 2
        width = w - 2 * self.margin
        lines = _wrap(prompt, font, width - 2 * pad, self.PROMPT_LINES)
        line_height = round(size * 1.3)
        patch = Image.new("RGBA", (width, len(lines) * line_height + 2 * pad), (0, 0, 0, 0))
        draw = ImageDraw.Draw(patch)
        draw.rounded_rectangle((0, 0, *patch.size), radius=pad, fill=(0, 0, 0, 150))
        for n, line in enumerate(lines):
            draw.text((pad, pad + n * line_height), line, font=font, fill=(255, 255, 255, 255))
        return (self.margin, h - self.margin - patch.height), patch

    def _caption(self, i: int) -> str:
        seconds = i / self.job.fps
        return (
            f"{self.job.model} · seed {self.job.seed} · "
            f"frame {i + 1}/{self.n_frames} · {seconds:.2f} s"
        )

    def draw(self, frame: Image.Image, i: int, visibility: float) -> None:
        """Paste the overlay onto `frame` at `visibility` opacity (0 leaves it untouched)."""
        if visibility <= 0:
            return
        caption = Image.new("RGBA", self.caption_size, (0, 0, 0, 0))
        draw = ImageDraw.Draw(caption)
        draw.rounded_rectangle((0, 0, *caption.size), radius=self.caption_pad, fill=(0, 0, 0, 140))
        draw.text(
            (self.caption_pad, self.caption_pad),
            self._caption(i),
            font=self.caption_font,
            fill=(255, 255, 255, 255),
        )
        lut = [round(v * visibility) for v in range(256)]
        for xy, patch in [*self.patches, ((self.margin, self.margin), caption)]:
            alpha = patch.getchannel("A")
            frame.paste(patch, xy, alpha if visibility >= 1 else alpha.point(lut))


def _wrap(text: str, font: Font, width: float, max_lines: int) -> list[str]:
    """Greedy word wrap to `width` pixels, ending in an ellipsis past `max_lines`."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}" if line else word
        if font.getlength(candidate) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        while font.getlength(word) > width and len(lines) <= max_lines:
            cut = _longest_fitting_prefix(word, font, width)
            lines.append(word[:cut])
            word = word[cut:]
        line = word
        if len(lines) > max_lines:
            break
    if line:
        lines.append(line)
    if len(lines) > max_lines:
        last = lines[max_lines - 1]
        while last and font.getlength(last + "…") > width:
            last = last[:-1]
        lines = [*lines[: max_lines - 1], last.rstrip() + "…"]
    return lines


def _longest_fitting_prefix(word: str, font: Font, width: float) -> int:
    low, high = 1, len(word)
    while low < high:
        mid = (low + high + 1) // 2
        if font.getlength(word[:mid]) <= width:
            low = mid
        else:
            high = mid - 1
    return low
