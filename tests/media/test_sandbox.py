"""Media is decoded in sandbox processes: same answers, and a crash costs one request only."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

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


def allowed_cores() -> list[int]:
    return sorted(os.sched_getaffinity(0))


FROM_ONE_CORE = """
import json, os, threading, uuid
from tests.media.test_sandbox import allowed_cores
from videoqueue.cpus import claim_core
from videoqueue.media.sandbox import DecodeSandbox
sandbox = DecodeSandbox(processes=1)
found = []
def start_from_one_core():  # as an API process's threads run
    assert claim_core(f"test-sandbox-{uuid.uuid4().hex}") is not None
    found.extend(sandbox.run("cores", allowed_cores))
thread = threading.Thread(target=start_from_one_core)
thread.start()
thread.join()
sandbox.close()
print(json.dumps(found))
"""


@pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="pins a thread to a core (Linux, 2+ cores)",
)
def test_decoders_started_by_a_thread_kept_to_one_core_may_use_the_process_cores() -> None:
    # In a process of its own: its decoders' fork server is started from the pinned thread.
    done = subprocess.run(
        [sys.executable, "-c", FROM_ONE_CORE],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == sorted(os.sched_getaffinity(0))
