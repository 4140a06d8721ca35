"""A device written from docs/protocol.md alone, with its own encoder (not drivers.protocol), on a real pty.

It answers IDENTIFY with the identity it is given and every other command with ACK, streams telemetry every 10 ms
from a state the test sets (a light or a pen layout), and sends whatever frame a test asks for, by raw wire bytes or
by fields, numbered in its own sequence. It records the heartbeats it hears, so a test can see them stop.
"""

from __future__ import annotations

import json
import os
import select
import struct
import threading
import time
import tty
from dataclasses import dataclass, field

# --- the codec, from the document -------------------------------------------------------------------------------


def crc16_ccitt_false(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final xor (bit by bit, as the doc says)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def cobs(data: bytes) -> bytes:
    out, block = bytearray(), bytearray()
    for byte in data:
        if byte == 0:
            out += bytes([len(block) + 1]) + block
            block = bytearray()
        else:
            block.append(byte)
            if len(block) == 254:
                out += b"\xff" + block
                block = bytearray()
    out += bytes([len(block) + 1]) + block
    return bytes(out)


def uncobs(data: bytes) -> bytes:
    out, i = bytearray(), 0
    while i < len(data):
        code = data[i]
        out += data[i + 1 : i + code]
        i += code
        if code < 0xFF and i < len(data):
            out.append(0)
    return bytes(out)


def wire(msg_type: int, seq: int, payload: bytes) -> bytes:
    body = struct.pack("<BH", msg_type, seq & 0xFFFF) + payload
    return cobs(body + struct.pack("<H", crc16_ccitt_false(body))) + b"\x00"


def unwire(frame: bytes) -> tuple[int, int, bytes]:
    """(type, seq, payload) of one frame without its delimiter; raises ValueError on a bad CRC."""
    raw = uncobs(frame)
    body, crc = raw[:-2], struct.unpack("<H", raw[-2:])[0]
    if crc16_ccitt_false(body) != crc:
        raise ValueError("bad CRC")
    msg_type, seq = struct.unpack_from("<BH", body)
    return msg_type, seq, body[3:]


# message types and layouts (docs/protocol.md)
IDENTIFY, HEARTBEAT, SET, ARM, START, STOP, RESET = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07
ACK, REFUSE, IDENTITY, TELEMETRY, FAULT, STATUS = 0x80, 0x81, 0x82, 0x90, 0x91, 0x92
TELEMETRY_HEADER = struct.Struct("<QHBI")  # t0_us, period_us, n, target (light) / cartridge strokes (pen)
LIGHT_SAMPLE = struct.Struct("<HIhBH")  # irradiance 0.01 mW/cm², dose 0.001 mJ/cm², temp 0.01 °C, flags, faults
PEN_SAMPLE = struct.Struct("<HHHHBH")  # depth set µm, depth µm, rate 0.01 Hz, current 0.1 mA, flags, faults

LIGHT_IDENTITY = {"model": "UVB-308 hostile test device", "serial_number": "HOSTILE-1", "firmware": "0.0.1",
                  "protocol_version": 2, "kind": "light",
                  "calibration": {"factor": 1.0, "date": "2026-11-01", "irradiance_mw_cm2": 100.0}}
PEN_IDENTITY = {"model": "MN-150 hostile test device", "serial_number": "HOSTILE-2", "firmware": "0.0.1",
                "protocol_version": 2, "kind": "needling"}


@dataclass
class LightSample:
    irradiance_cmw: int = 0
    dose_udose: int = 0
    temp_cc: int = 2500
    flags: int = 2  # skin contact
    faults: int = 0

    def pack(self) -> bytes:
        return LIGHT_SAMPLE.pack(self.irradiance_cmw, self.dose_udose, self.temp_cc, self.flags, self.faults)


@dataclass
class HostileDevice:
    """Start with `.start()`; the driver opens `.port`. Stop with `.stop()`."""

    identity: dict = field(default_factory=lambda: dict(LIGHT_IDENTITY))
    preamble: list[bytes] = field(default_factory=list)  # raw frames sent when the host's first frame arrives
    stream: bool = True
    period_us: int = 500
    samples_per_frame: int = 20
    identity_raw: bytes | None = None  # sent as the IDENTITY's JSON instead of `identity`, byte for byte
    unanswered_identifies: int = 0  # the first so many IDENTIFY get no answer (a device, or a host, held up)

    def __post_init__(self) -> None:
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self.master, False)  # a host that stops reading must never block the device (its FIFO drops)
        self.port = os.ttyname(self._slave)
        self.seq = 0
        self.t_us = 1_000_000
        self.target_mdose = 0
        self.sample = LightSample()
        self.dose_rate_udose_per_sample = 0  # added to the dose per streamed sample while flags say active
        self.idle_dose_rate_udose_per_sample = 0  # added while flags say inactive (a dose that cannot be true)
        self.received: list[tuple[float, int, int, bytes]] = []  # (time, type, seq, payload) from the host
        self.dropped = 0
        self._lock = threading.Lock()
        self._running = threading.Event()
        self._threads: list[threading.Thread] = []
        self._buf = b""
        self._preamble_sent = False

    # --- life cycle -----------------------------------------------------------------------------------------
    def start(self) -> HostileDevice:
        self._running.set()
        for target in (self._rx, self._tx):
            t = threading.Thread(target=target, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self._running.clear()
        for t in self._threads:
            t.join(timeout=2)
            assert not t.is_alive(), "the test device's thread did not end: its descriptors stay open"
        for fd in (self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass

    # --- sending ----------------------------------------------------------------------------------------------
    def send_raw(self, data: bytes) -> None:
        """Exact bytes on the wire; the device's own sequence continues after the frame's."""
        with self._lock:
            if data.endswith(b"\x00"):
                self.seq = (unwire(data[:-1])[1] + 1) & 0xFFFF
            self._write(data)

    def send(self, msg_type: int, payload: bytes) -> None:
        with self._lock:
            self._write(wire(msg_type, self.seq, payload))
            self.seq = (self.seq + 1) & 0xFFFF

    def _write(self, data: bytes) -> None:
        try:
            os.write(self.master, data)
        except BlockingIOError:
            self.dropped += 1  # the host is not reading: the frame is lost, its sequence number spent

    def telemetry_payload(self, samples: list[LightSample] | None = None, *, t0_us: int | None = None,
                          n: int | None = None, period_us: int | None = None, target: int | None = None) -> bytes:
        """A light TELEMETRY payload on the device's clock (advanced past it), each field overridable."""
        samples = samples if samples is not None else [self.sample] * self.samples_per_frame
        period = self.period_us if period_us is None else period_us
        with self._lock:
            t0 = self.t_us if t0_us is None else t0_us
            self.t_us += max(1, len(samples)) * self.period_us
        header = TELEMETRY_HEADER.pack(t0, period, len(samples) if n is None else n,
                                       self.target_mdose if target is None else target)
        return header + b"".join(s.pack() for s in samples)

    def heartbeats(self, since: float = 0.0) -> list[float]:
        return [t for t, typ, _, _ in list(self.received) if typ == HEARTBEAT and t >= since]

    def commands(self, msg_type: int) -> list[tuple[float, int, int, bytes]]:
        return [r for r in list(self.received) if r[1] == msg_type]

    # --- threads ----------------------------------------------------------------------------------------------
    def _tx(self) -> None:
        while self._running.is_set():
            if self.stream and self._preamble_sent:
                samples = []
                for _ in range(self.samples_per_frame):
                    if self.sample.flags & 1:
                        self.sample.dose_udose += self.dose_rate_udose_per_sample
                    else:
                        self.sample.dose_udose += self.idle_dose_rate_udose_per_sample
                    samples.append(LightSample(**vars(self.sample)))
                try:
                    self.send(TELEMETRY, self.telemetry_payload(samples))
                except OSError:
                    return
            time.sleep(self.samples_per_frame * self.period_us / 1e6)

    def _rx(self) -> None:
        while self._running.is_set():
            r, _, _ = select.select([self.master], [], [], 0.05)
            if not r:
                continue
            try:
                data = os.read(self.master, 4096)
            except BlockingIOError:
                continue
            except OSError:
                return
            self._buf += data
            *frames, self._buf = self._buf.split(b"\x00")
            for raw in frames:
                if raw:
                    self._serve(raw)

    def _serve(self, raw: bytes) -> None:
        try:
            msg_type, seq, payload = unwire(raw)
        except (ValueError, struct.error):
            return
        self.received.append((time.monotonic(), msg_type, seq, payload))
        if not self._preamble_sent:
            self._preamble_sent = True
            for frame in self.preamble:
                self.send_raw(frame)
        if msg_type == HEARTBEAT:
            return
        if msg_type == IDENTIFY:
            if self.unanswered_identifies > 0:
                self.unanswered_identifies -= 1
                return
            body = self.identity_raw if self.identity_raw is not None else json.dumps(self.identity).encode()
            self.send(IDENTITY, struct.pack("<H", seq) + body)
            return
        if msg_type == STOP:
            self.sample.flags &= ~1
        self.send(ACK, struct.pack("<H", seq))
