"""Turning a generated waveform into the stereo track `write_mp4` muxes."""

from __future__ import annotations

import av
import numpy as np
import numpy.typing as npt

from videoqueue.media.mp4 import SAMPLE_RATE, Audio

LAYOUTS = {1: "mono", 2: "stereo"}


def soundtrack(samples: npt.NDArray[np.float32], sample_rate: int, n_samples: int) -> Audio:
    """`samples` (channels, samples) at `sample_rate` as stereo at `SAMPLE_RATE`, cut or padded
    with silence to exactly `n_samples`, so the track lasts as long as the video."""
    channels = samples.shape[0]
    if channels not in LAYOUTS:
        raise ValueError(f"cannot make a stereo track from {channels} channels")
    frame = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(samples, dtype=np.float32), format="fltp", layout=LAYOUTS[channels]
    )
    frame.sample_rate = sample_rate
    resampler = av.AudioResampler(format="fltp", layout="stereo", rate=SAMPLE_RATE)
    chunks = [out.to_ndarray() for out in [*resampler.resample(frame), *resampler.resample(None)]]
    track = np.concatenate(chunks, axis=1) if chunks else np.zeros((2, 0), np.float32)
    track = track[:, :n_samples]
    if track.shape[1] < n_samples:
        track = np.pad(track, ((0, 0), (0, n_samples - track.shape[1])))
    return np.clip(track, -1.0, 1.0).astype(np.float32)
