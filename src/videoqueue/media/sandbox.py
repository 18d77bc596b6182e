"""Decoding clients' media in separate processes, so a decoder crash cannot take the API down.

FFmpeg, Pillow and OpenCV are native code fed with bytes from the internet. The API process
hands each file to a small pool of decoder processes (and the stills it makes of finished
videos, `media.previews`); if one dies (a segfault, the OOM killer), the request is answered
400 and the pool is started afresh.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from videoqueue.cpus import allow_cores, unpinned_cores
from videoqueue.media.checks import MediaFacts, MediaInspector
from videoqueue.media.errors import MediaError
from videoqueue.media.intake import MediaBlob
from videoqueue.media.rules import MediaRules

# Decoder processes fork from a server that has these imported: each starts in milliseconds.
# (The API process itself never imports the decoders.)
PRELOAD = ["videoqueue.media.checks", "av", "numpy", "PIL.Image", "cv2"]


class DecoderCrashed(MediaError):
    """The media file could not be decoded"""

    code = "CORRUPTED_MEDIA"


def inspect_in_child(rules: MediaRules, blob: MediaBlob) -> MediaFacts:
    """What a decoder process runs: the ordinary in-process inspection."""
    return MediaInspector(rules).inspect(blob)


Inspect = Callable[[MediaRules, MediaBlob], MediaFacts]
T = TypeVar("T")


class DecodeSandbox:
    """A lazily started pool of decoder processes, replaced whenever one of them dies."""

    def __init__(self, processes: int = 2, target: Inspect = inspect_in_child) -> None:
        self.processes = processes
        self.target = target
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _current_pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload(PRELOAD)
                # Started from an API thread kept to one core: the decoders may use every
                # core the API process was given.
                self._pool = ProcessPoolExecutor(
                    self.processes,
                    mp_context=context,
                    initializer=allow_cores,
                    initargs=(unpinned_cores(),),
                )
            return self._pool

    def inspect(self, rules: MediaRules, blob: MediaBlob) -> MediaFacts:
        """`MediaInspector(rules).inspect(blob)`, run in a decoder process."""
        return self.run(blob.field, self.target, rules, blob)

    def run(self, what: str, work: Callable[..., T], *args: object) -> T:
        """`work(*args)` (a module-level function) in a decoder process; `DecoderCrashed`
        naming `what` if the process dies."""
        pool = self._current_pool()
        try:
            return pool.submit(work, *args).result()
        except BrokenProcessPool:
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
            raise DecoderCrashed(f"{what}: the file could not be decoded") from None

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
