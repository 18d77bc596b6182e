"""Media is decoded in sandbox processes: same answers, and a crash costs one request only."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from tests.media_files import clip, face_png
from videoqueue.media.checks import MediaFacts, MediaInspector
from videoqueue.media.errors import MediaError
from videoqueue.media.intake import MediaBlob
from videoqueue.media.rules import MediaRules
from videoqueue.media.sandbox import DecoderCrashed, DecodeSandbox, inspect_in_child


def crash_on_request(rules: MediaRules, blob: MediaBlob) -> MediaFacts:
    """A decoder that segfaults (as far as the pool can tell) on the bytes `crash`."""
    if blob.data == b"crash":
        os.kill(os.getpid(), signal.SIGKILL)
    return inspect_in_child(rules, blob)


@pytest.fixture
def sandbox() -> Iterator[DecodeSandbox]:
    pool = DecodeSandbox(processes=1, target=crash_on_request)
    yield pool
    pool.close()


def test_the_sandbox_answers_as_the_inspector_does(sandbox: DecodeSandbox) -> None:
    rules = MediaRules(detect_faces=True)
    blob = MediaBlob("image_url", face_png())
    assert MediaInspector(rules, sandbox).inspect(blob) == MediaInspector(rules).inspect(blob)
    assert MediaInspector(rules, sandbox).inspect(blob).has_face


def test_refusals_cross_with_their_status_and_code(sandbox: DecodeSandbox) -> None:
    blob = MediaBlob("reference_video_urls[0]", clip(20.0))
    with pytest.raises(MediaError) as direct:
        MediaInspector(MediaRules()).inspect(blob)
    with pytest.raises(MediaError) as sandboxed:
        MediaInspector(MediaRules(), sandbox).inspect(blob)
    assert type(sandboxed.value) is type(direct.value)
    assert (sandboxed.value.status, sandboxed.value.code, sandboxed.value.message) == (
        422,
        "VIDEO_DURATION_TOO_LONG",
        direct.value.message,
    )


def test_a_crashing_decoder_answers_400_and_the_next_file_decodes(sandbox: DecodeSandbox) -> None:
    inspector = MediaInspector(MediaRules(), sandbox)
    with pytest.raises(DecoderCrashed) as crashed:
        inspector.inspect(MediaBlob("image_url", b"crash"))
    assert crashed.value.status == 400
    assert crashed.value.body() == {
        "error": "image_url: the file could not be decoded",
        "code": "CORRUPTED_MEDIA",
    }
    assert inspector.inspect(MediaBlob("image_url", face_png())).width == 320
