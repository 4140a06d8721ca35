"""Alarm sounds: one burst per priority with the pulse count of IEC 60601-1-8's priority encoding (high 10, medium
3, low 2), tones with harmonics; the most urgent unacknowledged alarm sounds and repeats until acknowledged."""

from __future__ import annotations

import io
import itertools
import wave

import numpy as np
import pytest

from workstation.bus import Event, now_s
from workstation.ui.alarm_sound import BURSTS, HARMONICS, RATE_HZ, AlarmSound, Burst, burst_samples, wav_bytes
from workstation.ui.alarms import AlarmList


def pulses(samples: np.ndarray) -> int:
    """Count the pulses: runs of 5 ms windows whose RMS is above a tenth of the loudest."""
    win = int(0.005 * RATE_HZ)
    n = len(samples) // win
    rms = np.sqrt((samples[: n * win].reshape(n, win) ** 2).mean(axis=1))
    on = rms > 0.1 * rms.max()
    return int(np.count_nonzero(on[1:] & ~on[:-1]) + on[0])


@pytest.mark.parametrize(("priority", "expected"), [("high", 10), ("medium", 3), ("low", 2)])
def test_each_priority_has_its_pulse_count(priority: str, expected: int) -> None:
    samples = burst_samples(BURSTS[priority])
    assert pulses(samples) == expected
    assert np.abs(samples).max() <= 1.0


def test_the_high_burst_is_grouped_three_two_pause_three_two() -> None:
    gaps = np.diff(BURSTS["high"].onsets_s)
    pause = gaps.argmax()
    assert pause == 4  # after the fifth pulse
    assert gaps[2] > gaps[0] and gaps[7] > gaps[5]  # the 3 + 2 grouping inside each half


@pytest.mark.parametrize("priority", list(BURSTS))
def test_pulses_are_tones_with_harmonics_and_urgency_raises_the_pitch(priority: str) -> None:
    burst = BURSTS[priority]
    assert 150 <= burst.f0_hz <= 1000
    samples = burst_samples(burst)
    spectrum = np.abs(np.fft.rfft(samples))
    freqs = np.fft.rfftfreq(len(samples), 1 / RATE_HZ)
    peak = spectrum.max()
    for k in range(1, len(HARMONICS) + 1):  # f0 and four harmonics, each within 15 dB of the strongest
        near = spectrum[np.abs(freqs - k * burst.f0_hz) < 10].max()
        assert 20 * np.log10(near / peak) > -15
    assert BURSTS["high"].f0_hz > BURSTS["medium"].f0_hz > BURSTS["low"].f0_hz


def test_wav_is_16_bit_mono_at_the_rate() -> None:
    data = wav_bytes(burst_samples(BURSTS["medium"]))
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, RATE_HZ)
        assert w.getnframes() == len(burst_samples(BURSTS["medium"]))


FAST = {"high": Burst((0.0,), 0.01, 660.0, 0.05), "medium": Burst((0.0,), 0.01, 523.0, 0.1),
        "low": Burst((0.0,), 0.01, 392.0, None)}


_causes = itertools.count()


def alarm(severity: str) -> Event:
    """An alarm of its own cause (its own device): signals of one cause are one condition and sound once."""
    return Event(now_s(), "interlock" if severity == "high" else "alarm", severity, "safety", f"a {severity} alarm",
                 {"device": f"device-{next(_causes)}"})


def test_a_related_signal_does_not_sound_again(qtbot) -> None:
    played: list[str] = []
    alarms = AlarmList(sound=AlarmSound(player=played.append, bursts=FAST))
    qtbot.addWidget(alarms)
    first = alarm("low")
    alarms.add(first)
    alarms.add(Event(now_s(), "alarm", "low", "safety", "the same cause again", dict(first.details)))
    assert played == ["low"] and len(alarms.alarms) == 1


def test_the_most_urgent_open_alarm_sounds_until_acknowledged(qtbot) -> None:
    played: list[str] = []
    alarms = AlarmList(sound=AlarmSound(player=played.append, bursts=FAST))
    qtbot.addWidget(alarms)
    alarms.add(alarm("medium"))
    assert played == ["medium"]
    alarms.add(alarm("high"))  # more urgent: it takes over at once and repeats every 50 ms
    assert played[-1] == "high"
    qtbot.waitUntil(lambda: played.count("high") >= 3, timeout=2000)
    alarms.add(alarm("low"))  # less urgent than what sounds: no cue of its own now
    assert set(played) == {"medium", "high"}
    alarms.acknowledge_selected()  # the high one: the medium one sounds again, repeating
    assert alarms.sound.sounding == "medium"
    n = played.count("medium")
    qtbot.waitUntil(lambda: played.count("medium") >= n + 2, timeout=2000)
    assert played[-1] == "medium"
    alarms.acknowledge_selected()  # the medium one: the low one sounds once, no repeat
    assert played[-1] == "low" and alarms.sound.sounding == "low"
    n = len(played)
    qtbot.wait(300)
    assert len(played) == n
    alarms.acknowledge_selected()
    assert alarms.sound.sounding is None and not alarms.unacknowledged()
    qtbot.wait(200)
    assert len(played) == n  # silence


def test_a_new_alarm_of_the_sounding_priority_sounds_again_and_clear_silences(qtbot) -> None:
    played: list[str] = []
    alarms = AlarmList(sound=AlarmSound(player=played.append, bursts=FAST))
    qtbot.addWidget(alarms)
    alarms.add(alarm("low"))
    alarms.add(alarm("low"))
    assert played == ["low", "low"]
    alarms.add(Event(now_s(), "note", "info", "operator", "not an alarm"))
    assert played == ["low", "low"]
    alarms.add(alarm("high"))
    alarms.clear()
    n = len(played)
    qtbot.wait(200)
    assert len(played) == n and alarms.sound.sounding is None


def test_a_broken_player_never_stops_the_alarm_being_shown(qtbot) -> None:
    def broken(_priority: str) -> None:
        raise OSError("no audio device")

    alarms = AlarmList(sound=AlarmSound(player=broken, bursts=FAST))
    qtbot.addWidget(alarms)
    assert alarms.add(alarm("high")) is not None
    assert alarms.list.count() == 1 and alarms.sound.played == ["high"]


def test_without_qt_multimedia_the_system_beep_is_the_cue(qtbot, monkeypatch) -> None:
    import workstation.ui.alarm_sound as mod

    monkeypatch.setattr(mod, "qt_player", lambda _parent: None)
    sound = AlarmSound()
    assert sound.player is mod.beep_player
    sound.update({"high"}, raised="high")
    assert sound.played == ["high"]
    sound.silence()
