"""What the diffusers engine's tests share: reading back an MP4, and running a job through the
HTTP API with a model bound the way an operator binds one."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from tests.conftest import RETRIEVE_POLL_S, Env, wait_until
from videoqueue.settings import Settings


def decode(data: bytes) -> tuple[npt.NDArray[np.uint8], float]:
    """The frames (n, h, w, 3) and the frame rate of an MP4."""
    with av.open(io.BytesIO(data), "r") as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate or 0)
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    return np.stack(frames), rate


def decode_audio(data: bytes) -> tuple[npt.NDArray[np.float32], int] | None:
    """The MP4's sound as decoded, (channels, samples), and its sample rate; None if silent."""
    with av.open(io.BytesIO(data), "r") as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        chunks = [f.to_ndarray() for f in container.decode(stream)]
        return np.concatenate(chunks, axis=1), stream.rate


def bound_model(
    model_id: str,
    engine: str,
    fps: int,
    *,
    kind: str = "text-to-video",
    sound: bool = False,
    requires: tuple[str, ...] = (),
    extra: str = "",
) -> str:
    """An operator's catalogue entry binding `model_id` to `engine`: 1 s, 256p, 1:1, at $0.01
    a second; `extra` adds lines to the model's table."""
    audio = "true" if sound else "false"
    return f"""
[models."{model_id}"]
name = "{model_id}"
created = 1767225600
engine = "{engine}"
fps = {fps}
requires = {json.dumps(list(requires))}
{extra}
price = {{ rule = "per_second", rates = {{ "256p" = 0.01 }} }}

[models."{model_id}".constraints]
model_type = "{kind}"
durations = ["1s"]
resolutions = ["256p"]
aspect_ratios = ["1:1"]
audio = {audio}
audio_configurable = {audio}
"""


def operator_settings(tmp_path: Path, overlay: str, engines: dict[str, str]) -> Settings:
    """Settings with the catalogue overlay `overlay` and the `engines` setting, as an operator
    writes them to bind model ids to weights folders."""
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(overlay)
    return Settings(
        data_dir=tmp_path / "data",
        catalog_path=catalog,
        engines=engines,
        poll_seconds=0.05,
    )


def queued_video(env: Env, body: dict[str, Any], timeout: float = 240) -> bytes:
    """Queue `body` with a new key and poll retrieve until the MP4 is there; its bytes. The
    wait includes the worker's engine setup, which a loaded machine can take a minute over."""
    key = env.make_key()
    queued = env.post("/video/queue", body, key)
    assert queued.status_code == 200, queued.text
    ref = {"model": body["model"], "queue_id": queued.json()["queue_id"]}
    data: bytes = wait_until(
        lambda: (
            (r := env.post("/video/retrieve", ref, key)).headers["content-type"] == "video/mp4"
            and r.content
        ),
        timeout=timeout,
        interval=RETRIEVE_POLL_S,
    )
    return data
