"""Synthetic but realistic telemetry for recording tests: both devices at 2 kHz, 20-sample frames every 10 ms.

Every value is a pure function of the sample's index, so a test can check any row read back from a file without
keeping what was written. Run as a script (`python helpers_recording.py DIR`) it records forever, printing the rows
flushed after each flush: the crash test kills it.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drivers.channels import LIGHT_CHANNELS, PEN_CHANNELS  # noqa: E402
from drivers.protocol import LIGHT_BLOCK, PEN_BLOCK  # noqa: E402
from drivers.types import DriverInfo, Identity  # noqa: E402
from workstation.recording import SessionMeta, SessionRecorder  # noqa: E402

RATE_HZ = 2000.0
FRAME = 20
LIGHT_INFO = DriverInfo("light-uvb308", "light", "1.0.0", "synthetic light", RATE_HZ, LIGHT_CHANNELS, ())
PEN_INFO = DriverInfo("pen-mn", "needling", "1.0.0", "synthetic pen", RATE_HZ, PEN_CHANNELS, ())
LIGHT_ID = Identity("UVB308", "L-0001", "2.1.0", 1, {"lamp_hours": 812.5})
PEN_ID = Identity("MN-7", "P-0042", "1.4.2", 1, {"cartridge_strokes": 12000})
LIGHT_CAL = {"irradiance_gain": 1.013, "calibrated_utc": "2026-10-01"}
PEN_CAL = {"depth_offset_mm": -0.01}
DTYPES = {"light": LIGHT_BLOCK, "pen": PEN_BLOCK}


def meta(mode: str = "simulation") -> SessionMeta:
    return SessionMeta(str(uuid.uuid4()), mode, "PX-000123", "op-7", "acne-scar-combined", "1.2", "0.1.0")


def light_rows(i0: int, n: int, t0_host_s: float = 1000.0) -> np.ndarray:
    """Rows i0..i0+n of the light: exposures of 5 s every 10 s, dose ramping at the irradiance."""
    i = np.arange(i0, i0 + n, dtype=np.int64)
    b = np.empty(n, LIGHT_BLOCK)
    b["t_host_s"] = t0_host_s + (i // FRAME + 1) * (FRAME / RATE_HZ)  # frame arrival: after its last sample
    b["t_device_us"] = i * 500
    b["seq"] = (i // FRAME) % 65536
    phase = (i % 20000) / RATE_HZ  # s into the 10-s cycle
    on = phase < 5.0
    b["irradiance_mw_cm2"] = np.where(on, 40.0 + (i % 7) * 0.25, 0.0)
    b["dose_mj_cm2"] = np.where(on, phase * 40.0, 0.0)
    b["target_dose_mj_cm2"] = 200.0
    b["lamp_temp_c"] = 35.0 + (i % 1000) / 100.0
    b["shutter_open"] = on
    b["skin_contact"] = 1
    b["armed"] = 1
    b["fault_bits"] = 0
    return b


def pen_rows(i0: int, n: int, t0_host_s: float = 1000.0) -> np.ndarray:
    i = np.arange(i0, i0 + n, dtype=np.int64)
    b = np.empty(n, PEN_BLOCK)
    b["t_host_s"] = t0_host_s + (i // FRAME + 1) * (FRAME / RATE_HZ) + 0.003
    b["t_device_us"] = 7_000_000 + i * 500
    b["seq"] = (i // FRAME) % 65536
    b["depth_set_mm"] = 1.5
    b["depth_mm"] = 1.5 - (i % 11) * 0.001
    b["stroke_rate_hz"] = 120.0
    b["motor_current_ma"] = 250.0 + (i % 13)
    b["running"] = 1
    b["skin_contact"] = (i % 4000) < 3900
    b["armed"] = 1
    b["cartridge_strokes"] = 12000 + i * 120 // 2000
    b["fault_bits"] = 0
    return b


ROWS = {"light": light_rows, "pen": pen_rows}


def frames(device: str, first_frame: int, count: int, t0_host_s: float = 1000.0) -> list[np.ndarray]:
    rows = ROWS[device](first_frame * FRAME, count * FRAME, t0_host_s)
    return [rows[k * FRAME:(k + 1) * FRAME] for k in range(count)]


def add_devices(rec: SessionRecorder) -> None:
    rec.add_device("light", LIGHT_INFO, LIGHT_ID, LIGHT_BLOCK, LIGHT_CAL)
    rec.add_device("pen", PEN_INFO, PEN_ID, PEN_BLOCK, PEN_CAL)


def check_rows(device: str, rows: np.ndarray, i0: int = 0, t0_host_s: float = 1000.0) -> None:
    """Assert rows equal the generator's rows i0.. exactly, field by field."""
    expected = ROWS[device](i0, len(rows), t0_host_s)
    for name in expected.dtype.names:
        np.testing.assert_array_equal(rows[name], expected[name], err_msg=f"{device}.{name}")


HDF5_TEXT = ("Unable to", "unable to", "file write failed", "sblock", "eof =", "errno =", "H5F", "H5D", "H5C",
             "synchronously", "addr =")


def assert_in_words(text: str) -> None:
    """A message for a person: none of HDF5's own text, and balanced parentheses."""
    found = [m for m in HDF5_TEXT if m in text]
    assert not found, f"HDF5's text {found} in: {text}"
    assert text.count("(") == text.count(")"), f"unbalanced parentheses in: {text}"


def crash_event(k: int):
    from workstation.bus import Event

    return Event(1000.0 + k * 0.01, "note", "info", "operator", f"Frame {k}: note é ü 漢字.", {"frame": k})


def record_forever(directory: str) -> None:
    """Publish frames of both devices in real time (10x faster than the devices), print the flushed rows."""
    def flushed(rows: dict[str, int]) -> None:
        print("flushed", rows["light"], rows["pen"], flush=True)

    rec = SessionRecorder.create(directory, meta(), on_flush=flushed, min_free_bytes=0, flush_interval_s=0.05,
                                 t0_host_s=1000.0)
    add_devices(rec)
    rec.start()
    print("path", rec.path, flush=True)
    k = 0
    while True:
        for dev in ("light", "pen"):
            rec.on_block(dev, frames(dev, k, 1)[0])
        if k % 25 == 0:  # variable-length strings under SWMR must survive the kill as well
            rec.on_event(crash_event(k))
        k += 1
        time.sleep(0.001)


if __name__ == "__main__":
    record_forever(sys.argv[1])


def write_session(directory: Path, seconds: float, events=(), commands=(), plan=None, t0_host_s: float = 1000.0,
                  mode: str = "simulation") -> Path:
    """A closed recording of both devices for `seconds` of stream, with the given events and commands."""
    from workstation.bus import SessionBus

    rec = SessionRecorder.create(directory, meta(mode), min_free_bytes=0, t0_host_s=t0_host_s,
                                 queue_alarm_rows=10**9)
    add_devices(rec)
    rec.start()
    bus = SessionBus()
    bus.subscribe(rec)
    n_frames = int(round(seconds * RATE_HZ / FRAME))
    for dev in ("light", "pen"):
        rows = ROWS[dev](0, n_frames * FRAME, t0_host_s)
        for k in range(0, n_frames, 50):  # 50 frames a block: the recorder does not care about block sizes
            bus.publish_block(dev, rows[k * FRAME:(k + 50) * FRAME])
    for e in events:
        bus.publish_event(e)
    for c in commands:
        bus.publish_command(c)
    if plan is not None:
        rec.write_plan(plan)
    rec.close()
    return rec.path


_HOLD = """
import sys
how, path = sys.argv[1], sys.argv[2]
if how == "reader":
    from workstation.recording import Recording
    held = Recording.open(path)
    held.__enter__()
elif how == "append":
    import h5py
    held = h5py.File(path, "a", locking=False)
else:
    held = open(path, "r+b")
print("open", flush=True)
sys.stdin.readline()
"""


@contextlib.contextmanager
def reader_holding(path: Path, how: str = "reader"):
    """Another program holding the recording at `path` open until the block ends, a real process: `how` = "reader"
    (the project's own Recording.open, HDF5's file locking off, as an engineer's replay or inspect window would),
    "append" (h5py in append mode: a program that may write to it) or "raw" (a plain read-write open, no HDF5)."""
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, how, str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[1])
    try:
        line = proc.stdout.readline().strip()
        assert line == "open", f"the holder did not open {path}: {line} {proc.stderr.read() if proc.poll() else ''}"
        yield proc
    finally:
        if proc.poll() is None:
            proc.stdin.write("\n")
            proc.stdin.flush()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
