"""Decoding decides what a file is: accepted image formats, and the face screen."""

from __future__ import annotations

import pytest

from tests.media_files import coffee_rgb, encode_image, encode_video, face_png, face_rgb
from videoqueue.media.checks import MediaInspector
from videoqueue.media.errors import CorruptedImage, InvalidVideoFormat
from videoqueue.media.intake import MediaBlob
from videoqueue.media.rules import MediaRules

SCREENING = MediaInspector(MediaRules(detect_faces=True))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF"])
def test_accepted_image_formats_decode_and_keep_their_face(fmt: str) -> None:
    facts = SCREENING.inspect(MediaBlob("image_url", encode_image(face_rgb(), fmt)))
    assert (facts.width, facts.height) == (320, 320)
    assert facts.has_face


@pytest.mark.parametrize("fmt", ["PPM", "ICO", "TGA"])
def test_other_image_formats_are_refused_even_when_pillow_reads_them(fmt: str) -> None:
    with pytest.raises(CorruptedImage, match="accepted: JPEG, PNG, WebP, BMP, TIFF, GIF"):
        SCREENING.inspect(MediaBlob("image_url", encode_image(coffee_rgb(64), fmt)))


def test_an_image_without_a_face_has_none() -> None:
    assert not SCREENING.inspect(MediaBlob("image_url", encode_image(coffee_rgb()))).has_face


def test_faces_are_screened_only_for_face_consent_models_and_roles() -> None:
    image = face_png()
    assert not MediaInspector(MediaRules()).inspect(MediaBlob("image_url", image)).has_face
    scene = SCREENING.inspect(MediaBlob("scene_image_urls[0]", image))
    assert not scene.has_face, "scene images are not a face-consent role"
    assert (
        SCREENING.inspect(MediaBlob("reference_image_urls[3]", image)).kind
        == "reference_image_urls"
    )


@pytest.mark.parametrize(("codec", "accepted"), [("libx264", True), ("mpeg4", False)])
def test_reference_videos_must_be_h264_or_h265(codec: str, accepted: bool) -> None:
    frames = [coffee_rgb(64)] * 12  # 3 s at 4 fps
    blob = MediaBlob(field="reference_video_urls[0]", data=encode_video(frames, 4, codec=codec))
    inspector = MediaInspector(MediaRules())
    if accepted:
        assert inspector.inspect(blob).duration_s == pytest.approx(3.0, abs=0.3)
        return
    with pytest.raises(InvalidVideoFormat, match=r"reference_video_urls\[0\]: the video is mpeg4"):
        inspector.inspect(blob)
    plain = MediaBlob(field="video_url", data=blob.data)
    assert inspector.inspect(plain).duration_s == pytest.approx(3.0, abs=0.3), (
        "only reference videos have the codec rule"
    )
