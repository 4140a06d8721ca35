"""The synthetic data source of the demo window and the GUI benchmark (no Qt here): `SyntheticSource` publishes
plausible light and pen blocks with no port and no emulator. Live sessions, emulated or real, are wired by
`workstation/session/rig.py` (`Rig`: monitor first, heartbeats gated on it); this module never drives a device.

Every source publishes blocks on a `SessionBus` and exposes, per device, the few things a status line shows
(`DeviceLink`: name, connected, counters, error). Connecting waits on serial I/O, so it runs on a background thread:
the window shows at once and its status lines say "connecting" until the devices answer.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from drivers.protocol import LIGHT_BLOCK, PEN_BLOCK
from workstation.bus import SessionBus, now_s

log = logging.getLogger(__name__)

DEVICE_NAMES = ("light", "pen")


class DeviceLink(Protocol):
    """What a status line reads; attributes only, so reading them from the GUI thread never blocks."""

    name: str
    counters: Any  # has frames, bad_frames, seq_gaps (drivers.base.Counters or SyntheticCounters)

    @property
    def connected(self) -> bool: ...


@dataclass
class SyntheticCounters:
    frames: int = 0
    bad_frames: int = 0
    resyncs: int = 0
    seq_gaps: int = 0
    samples: int = 0


class DataSource(ABC):
    """A set of devices publishing on one bus. `start()` returns at once; `stop()` releases everything."""

    def __init__(self, bus: SessionBus) -> None:
        self.bus = bus
        self.links: dict[str, DeviceLink] = {}
        self.errors: dict[str, str] = {}  # device name -> a sentence for the status line
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="source-connect", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._bring_up()
        except Exception as exc:  # noqa: BLE001 - shown on the status lines; the trace goes to the log
            log.exception("bringing up the devices failed")
            for name in DEVICE_NAMES:
                if name not in self.links or not self.links[name].connected:
                    self.errors.setdefault(name, f"internal error while connecting: {exc}")

    @abstractmethod
    def _bring_up(self) -> None:
        """Runs on the source's thread: open, connect, then (for a feeder) keep publishing until stopped."""

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


class SyntheticLink:
    """One synthetic device: always connected, counts what it publishes."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.counters = SyntheticCounters()
        self.connected = False


class SyntheticSource(DataSource):
    """Plausible light and pen telemetry at 2 kHz in 20-sample blocks every 10 ms, with no port and no emulator.

    For work on the display offline and for benchmarks: `prefill(seconds)` writes a history at once, then `start()`
    keeps feeding in real time from a thread, as a driver's reader would.
    """

    def __init__(self, bus: SessionBus, rate_hz: float = 2000.0, samples_per_block: int = 20) -> None:
        super().__init__(bus)
        self.rate_hz = rate_hz
        self.samples_per_block = samples_per_block
        self.links = {name: SyntheticLink(name) for name in DEVICE_NAMES}
        self._next_index = 0
        self._t0_host_s = now_s()
        self._rng = np.random.default_rng(1)

    def prefill(self, seconds: float, block_s: float = 10.0) -> None:
        """Publish `seconds` of history ending now, in large blocks (much faster than real time)."""
        n_total = int(seconds * self.rate_hz)
        self._t0_host_s = now_s() - n_total / self.rate_hz
        per_block = max(1, int(block_s * self.rate_hz))
        while self._next_index < n_total:
            self._publish(min(per_block, n_total - self._next_index))

    def _bring_up(self) -> None:
        for link in self.links.values():
            link.connected = True
        period_s = self.samples_per_block / self.rate_hz
        while not self._stopping.is_set():
            due = int((now_s() - self._t0_host_s) * self.rate_hz) - self._next_index
            while due >= self.samples_per_block:
                self._publish(self.samples_per_block)
                due -= self.samples_per_block
            self._stopping.wait(period_s)
        for link in self.links.values():
            link.connected = False

    def _publish(self, n: int) -> None:
        index = self._next_index + np.arange(n)
        t_s = index / self.rate_hz
        t_host_s = self._t0_host_s + (index[-1] + 1) / self.rate_hz
        self._next_index += n
        for name, block in (("light", self._light(t_s, t_host_s)), ("pen", self._pen(t_s, t_host_s))):
            block["t_device_us"] = np.round(t_s * 1e6).astype(np.int64)
            block["seq"] = (self.links[name].counters.frames + np.arange(n) // self.samples_per_block) & 0xFFFF
            counters = self.links[name].counters
            counters.frames += -(-n // self.samples_per_block)
            counters.samples += n
            self.bus.publish_block(name, block)

    def _light(self, t_s: np.ndarray, t_host_s: float) -> np.ndarray:
        """Exposures of 12 s every 30 s at ≈ 40 mW/cm², closing at a 450 mJ/cm² target; the lamp warms while on."""
        block = np.zeros(len(t_s), LIGHT_BLOCK)
        block["t_host_s"] = t_host_s
        phase_s = t_s % 30.0
        target = 450.0
        open_ = phase_s < target / 40.0
        irradiance = np.where(open_, 40.0 + self._rng.normal(0, 0.4, len(t_s)), 0.0)
        block["irradiance_mw_cm2"] = irradiance
        block["dose_mj_cm2"] = np.minimum(phase_s, target / 40.0) * 40.0
        block["target_dose_mj_cm2"] = target
        block["lamp_temp_c"] = 38.0 + 6.0 * (1 - np.exp(-t_s / 120.0)) + 1.5 * open_ + self._rng.normal(0, 0.05, len(t_s))
        block["shutter_open"] = open_
        block["skin_contact"] = phase_s < 14.0
        block["armed"] = 1
        return block

    def _pen(self, t_s: np.ndarray, t_host_s: float) -> np.ndarray:
        """Strokes at ≈ 100 Hz to 1.0 mm; contact on and off every few seconds; current rises with skin load."""
        block = np.zeros(len(t_s), PEN_BLOCK)
        block["t_host_s"] = t_host_s
        contact = (t_s % 7.0) < 5.0
        rate_hz = 100.0 + 2.0 * np.sin(2 * np.pi * t_s / 11.0) + self._rng.normal(0, 0.3, len(t_s))
        block["depth_set_mm"] = 1.0
        block["depth_mm"] = 0.5 * (1 - np.cos(2 * np.pi * 100.0 * t_s)) * (0.97 + 0.03 * contact)
        block["stroke_rate_hz"] = rate_hz
        block["motor_current_ma"] = 120.0 + 60.0 * contact + self._rng.normal(0, 3.0, len(t_s))
        block["running"] = 1
        block["skin_contact"] = contact
        block["armed"] = 1
        return block


@dataclass
class RateMeter:
    """Frames per second from a growing counter, over the last `span_s` seconds."""

    span_s: float = 2.0
    _history: list[tuple[float, int]] = field(default_factory=list)

    def update(self, count: int, t_s: float | None = None) -> float:
        t_s = time.monotonic() if t_s is None else t_s
        self._history.append((t_s, count))
        while len(self._history) > 2 and t_s - self._history[1][0] >= self.span_s:
            self._history.pop(0)
        (t_old, c_old), (t_new, c_new) = self._history[0], self._history[-1]
        return (c_new - c_old) / (t_new - t_old) if t_new > t_old else 0.0
