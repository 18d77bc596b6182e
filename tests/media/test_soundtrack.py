"""A generated waveform becomes the stereo 48 kHz track `write_mp4` takes, of an exact length."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from videoqueue.media.mp4 import SAMPLE_RATE
from videoqueue.media.soundtrack import soundtrack


def tone(hz: float, rate: int, seconds: float) -> npt.NDArray[np.float32]:
    t = np.arange(round(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def peak_hz(channel: npt.NDArray[np.float32]) -> float:
    spectrum = np.abs(np.fft.rfft(channel))
    return float(np.argmax(spectrum) * SAMPLE_RATE / len(channel))


def test_a_waveform_is_resampled_to_48_khz_keeping_its_pitch() -> None:
    waveform = np.stack([tone(440, 16_000, 1.0), tone(220, 16_000, 1.0)])
    track = soundtrack(waveform, 16_000, SAMPLE_RATE)
    assert track.shape == (2, SAMPLE_RATE) and track.dtype == np.float32
    assert [peak_hz(track[0]), peak_hz(track[1])] == [440.0, 220.0]


def test_a_short_waveform_is_padded_with_silence_and_a_long_one_cut() -> None:
    waveform = np.stack([tone(440, 24_000, 0.5)] * 2)
    padded = soundtrack(waveform, 24_000, SAMPLE_RATE)
    assert padded.shape == (2, SAMPLE_RATE)
    assert np.abs(padded[:, : SAMPLE_RATE // 2 - 100]).max() > 0.4
    assert not padded[:, SAMPLE_RATE // 2 + 100 :].any()
    assert soundtrack(waveform, 24_000, 1000).shape == (2, 1000)


def test_mono_becomes_the_same_sound_on_both_sides() -> None:
    track = soundtrack(tone(440, 16_000, 0.25)[None, :], 16_000, SAMPLE_RATE // 4)
    assert track.shape == (2, SAMPLE_RATE // 4)
    assert np.array_equal(track[0], track[1]) and np.abs(track).max() > 0.2
