"""Auditory alarm signals: a distinct burst per priority, repeated until the alarm is acknowledged.

The bursts follow the structure IEC 60601-1-8 gives its priority-encoded signals: high priority is a burst of ten
pulses (3 + 2, a pause, 3 + 2), medium three pulses, low two; each pulse is a tone with its harmonics (a pure sine is
hard to localise) and short ramps (no clicks). The exact spacings, pitches and repeat intervals below are this
program's choices inside that structure; a device submitted for approval must have them verified against the
standard's tables.

What sounds is always the most urgent alarm not yet acknowledged: its burst plays when it appears and then every
`repeat_s` (high 5 s, medium 10 s); a low alarm sounds once. Acknowledging silences it, and the next open alarm, if
any, takes over. Playback uses Qt Multimedia where the machine has it (an audio device and its libraries), and the
platform's beep otherwise, so some cue is always given.
"""

from __future__ import annotations

import functools
import io
import logging
import tempfile
import wave
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QObject, QTimer, QUrl
from PyQt6.QtWidgets import QApplication

log = logging.getLogger(__name__)

RATE_HZ = 48000  # the rate audio devices run at natively
RAMP_S = 0.01
HARMONICS = (1.0, 0.6, 0.45, 0.3, 0.2)  # relative amplitudes of f0 and its first four harmonics (within 15 dB)


@dataclass(frozen=True)
class Burst:
    onsets_s: tuple[float, ...]  # when each pulse starts, from the start of the burst
    pulse_s: float
    f0_hz: float
    repeat_s: float | None  # None: sounds once

    @property
    def duration_s(self) -> float:
        return self.onsets_s[-1] + self.pulse_s


BURSTS = {
    "high": Burst((0.0, 0.15, 0.30, 0.60, 0.75, 1.45, 1.60, 1.75, 2.05, 2.20), 0.10, 660.0, 5.0),
    "medium": Burst((0.0, 0.25, 0.50), 0.15, 523.0, 10.0),
    "low": Burst((0.0, 0.30), 0.15, 392.0, None),
}
PRIORITY_ORDER = ("high", "medium", "low")


def burst_samples(burst: Burst, rate_hz: int = RATE_HZ) -> np.ndarray:
    """The burst as float samples in [-1, 1]."""
    out = np.zeros(int(round((burst.duration_s + 0.05) * rate_hz)))
    n = int(round(burst.pulse_s * rate_hz))
    t = np.arange(n) / rate_hz
    tone = sum(a * np.sin(2 * np.pi * burst.f0_hz * (k + 1) * t) for k, a in enumerate(HARMONICS))
    ramp = np.minimum(1.0, np.minimum(t, burst.pulse_s - t) / RAMP_S).clip(0.0)
    pulse = tone * ramp / sum(HARMONICS)
    for onset in burst.onsets_s:
        i = int(round(onset * rate_hz))
        out[i:i + n] += pulse
    return out


def wav_bytes(samples: np.ndarray, rate_hz: int = RATE_HZ, volume: float = 0.6) -> bytes:
    pcm = (np.clip(samples * volume, -1, 1) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate_hz)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


@functools.cache
def burst_files() -> dict[str, Path]:
    """The three bursts as WAV files, written once per process."""
    folder = Path(tempfile.mkdtemp(prefix="cicatrix-alarms-"))
    files = {}
    for priority, burst in BURSTS.items():
        files[priority] = folder / f"{priority}.wav"
        files[priority].write_bytes(wav_bytes(burst_samples(burst)))
    return files


def qt_player(parent: QObject) -> Callable[[str], None] | None:
    """A player of the three bursts through Qt Multimedia, or None where it is not available."""
    try:
        from PyQt6.QtMultimedia import QMediaDevices, QSoundEffect
    except ImportError as exc:  # no Qt Multimedia, or its audio libraries are missing (e.g. libpulse)
        log.info("alarm sounds fall back to the system beep: %s", exc)
        return None
    if not QMediaDevices.audioOutputs():
        log.info("alarm sounds fall back to the system beep: no audio output device")
        return None
    effects = {}
    for priority, path in burst_files().items():
        effect = QSoundEffect(parent)
        effect.setSource(QUrl.fromLocalFile(str(path)))
        effects[priority] = effect

    def play(priority: str) -> None:
        effect = effects[priority]
        if effect.status() == QSoundEffect.Status.Error:  # no audio device after all
            QApplication.beep()
        else:
            effect.play()

    return play


def beep_player(_priority: str) -> None:
    QApplication.beep()


class AlarmSound(QObject):
    """Sounds the most urgent unacknowledged alarm. `player(priority)` plays one burst; by default Qt Multimedia,
    or the system beep where it is missing. `update(open_priorities, raised=...)` is called on every change."""

    def __init__(self, parent: QObject | None = None, player: Callable[[str], None] | None = None,
                 bursts: dict[str, Burst] | None = None) -> None:
        super().__init__(parent)
        self.bursts = bursts or BURSTS
        self.player = player or qt_player(self) or beep_player
        self.sounding: str | None = None  # the priority whose burst repeats
        self.played: list[str] = []  # every burst played, for the trainer's log and tests
        self.enabled = True
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._repeat)

    def update(self, open_priorities: Iterable[str], raised: str | None = None) -> None:
        """`open_priorities`: the priorities of the unacknowledged alarms; `raised`: a new alarm's priority."""
        present = set(open_priorities)
        top = next((p for p in PRIORITY_ORDER if p in present), None)
        if top is None:
            self.silence()
            return
        if top != self.sounding or raised == top:
            self.sounding = top
            self._play(top)
            repeat = self.bursts[top].repeat_s
            if repeat is None:
                self._timer.stop()
            else:
                self._timer.start(int(repeat * 1000))

    def silence(self) -> None:
        self._timer.stop()
        self.sounding = None

    def _repeat(self) -> None:
        if self.sounding is not None:
            self._play(self.sounding)

    def _play(self, priority: str) -> None:
        if not self.enabled:
            return
        self.played.append(priority)
        try:
            self.player(priority)
        except Exception:  # noqa: BLE001 - a sound failure must never stop an alarm being shown
            log.exception("alarm sound failed")
