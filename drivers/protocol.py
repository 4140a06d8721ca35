"""The Cicatrix wire protocol: framing, message types and payload layouts, shared by drivers and emulators.

`docs/protocol.md` is the contract; this module is its one implementation. A frame on the wire is

    COBS( type:u8 | seq:u16le | payload | crc16:u16le ) 0x00

with the CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF; `binascii.crc_hqx(data, 0xFFFF)`) taken over type, seq and
payload. COBS removes every zero byte from the frame, so 0x00 only ever delimits frames: a receiver that lands in
garbage resynchronises at the next zero.
"""

from __future__ import annotations

import binascii
import json
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np

from drivers.textrule import blank_unsafe, has_unsafe

PROTOCOL_VERSION = 2  # 2: backup exposure time (LightParam.BACKUP_TIME_S, LightFault.BACKUP_TIME)
DELIMITER = b"\x00"
MAX_FRAME_BYTES = 1024  # decoded (type + seq + payload + crc); anything longer is garbage
_HEAD = struct.Struct("<BH")
_CRC = struct.Struct("<H")


class Msg(IntEnum):
    # host -> device
    IDENTIFY = 0x01
    HEARTBEAT = 0x02
    SET = 0x03
    ARM = 0x04
    START = 0x05
    STOP = 0x06
    RESET = 0x07
    # device -> host
    ACK = 0x80
    REFUSE = 0x81
    IDENTITY = 0x82
    TELEMETRY = 0x90
    FAULT = 0x91
    STATUS = 0x92


class Refusal(IntEnum):
    OUT_OF_BOUNDS = 1
    NOT_ARMED = 2
    NO_CONTACT = 3
    FAULT_LATCHED = 4
    NO_TARGET = 5
    BAD_STATE = 6
    UNKNOWN_COMMAND = 7
    BAD_PAYLOAD = 8
    CAUSE_PERSISTS = 9


# A refusal in words for people (one table: the driver's CommandRefused and command records say these, never the
# member's name); a code the protocol does not define is said as such (`refusal_words`).
REFUSAL_WORDS = {
    Refusal.OUT_OF_BOUNDS: "the value is outside what the device accepts",
    Refusal.NOT_ARMED: "the device is not armed",
    Refusal.NO_CONTACT: "the handpiece is not on the skin",
    Refusal.FAULT_LATCHED: "a fault is latched on the device: it needs a reset first",
    Refusal.NO_TARGET: "no target dose is set on the device",
    Refusal.BAD_STATE: "the device is busy or in a state that does not allow it",
    Refusal.UNKNOWN_COMMAND: "the device does not know this command",
    Refusal.BAD_PAYLOAD: "the device could not read the command's values",
    Refusal.CAUSE_PERSISTS: "the cause of the fault is still there",
}


def refusal_words(code: int) -> str:
    """Why a device refused, in words, from its REFUSE code (REFUSAL_WORDS); never the code's name."""
    try:
        return REFUSAL_WORDS[Refusal(code)]
    except ValueError:
        return f"the device gave a reason code ({code}) this program does not know"


class State(IntEnum):
    IDLE = 0
    ARMED = 1
    ACTIVE = 2  # light: shutter open (emitting); pen: motor running (needling)


class StopReason(IntEnum):
    COMMAND = 0
    DOSE_REACHED = 1
    WATCHDOG = 2
    FAULT = 3
    CONTACT_LOST = 4
    STARTED = 5
    ARMED = 6
    DISARMED = 7
    BACKUP_TIME = 8  # light: the backup exposure time ran out before the target dose


# Fault bits, latched by the device until RESET (and refused while the cause persists).
class LightFault(IntEnum):
    WATCHDOG = 1 << 0  # no heartbeat for 250 ms
    OVER_TEMPERATURE = 1 << 1
    LAMP_FAILURE = 1 << 2
    CONTACT_LOST = 1 << 3  # skin contact lost while emitting
    BACKUP_TIME = 1 << 4  # the exposure reached its backup time before its target dose (a sensor reading low?)


class PenFault(IntEnum):
    WATCHDOG = 1 << 0
    MOTOR_JAM = 1 << 1
    CONTACT_LOST = 1 << 3  # skin contact lost while needling
    OVER_CURRENT = 1 << 4


# Parameters settable with SET: id -> (name, unit). Bounds live in the drivers' declarations (host side) and in the
# device (which refuses out-of-bounds values on its own).
class LightParam(IntEnum):
    TARGET_DOSE_MJ_CM2 = 1
    BACKUP_TIME_S = 2  # the exposure ends at the target dose or after this much open-shutter time, whichever first


class PenParam(IntEnum):
    DEPTH_MM = 1
    STROKE_RATE_HZ = 2


SET_PAYLOAD = struct.Struct("<Bf")  # param id, value
ACK_PAYLOAD = struct.Struct("<H")  # sequence number of the command acknowledged
REFUSE_HEAD = struct.Struct("<HB")  # acked seq, Refusal code; then UTF-8 reason
FAULT_HEAD = struct.Struct("<HH")  # latched fault bits, newly raised bit(s); then UTF-8 text
STATUS_HEAD = struct.Struct("<BB")  # State, StopReason; then UTF-8 text
ARM_PAYLOAD = struct.Struct("<B")

# --- telemetry layouts (little-endian, packed): a header then n samples ------------------------------------------
LIGHT_HEADER = np.dtype([("t0_us", "<u8"), ("period_us", "<u2"), ("n", "u1"), ("target_dose_mdose", "<u4")])
LIGHT_SAMPLE = np.dtype(
    [
        ("irradiance_cmw", "<u2"),  # 0.01 mW/cm²
        ("dose_udose", "<u4"),  # 0.001 mJ/cm², delivered in the current exposure
        ("lamp_temp_cc", "<i2"),  # 0.01 °C
        ("flags", "u1"),  # bit0 shutter open, bit1 skin contact, bit2 armed
        ("faults", "<u2"),  # LightFault bits
    ]
)
PEN_HEADER = np.dtype([("t0_us", "<u8"), ("period_us", "<u2"), ("n", "u1"), ("cartridge_strokes", "<u4")])
PEN_SAMPLE = np.dtype(
    [
        ("depth_set_um", "<u2"),
        ("depth_um", "<u2"),
        ("stroke_rate_chz", "<u2"),  # 0.01 Hz
        ("motor_current_dma", "<u2"),  # 0.1 mA
        ("flags", "u1"),  # bit0 running, bit1 skin contact, bit2 armed
        ("faults", "<u2"),  # PenFault bits
    ]
)
FLAG_ACTIVE, FLAG_CONTACT, FLAG_ARMED = 1, 2, 4
FLAGS_KNOWN = FLAG_ACTIVE | FLAG_CONTACT | FLAG_ARMED
DEVICE_CLOCK_MAX_US = (1 << 63) - 1  # the host keeps device time in int64 µs (292 000 years)
LIGHT_DOSE_SCALE = 1000.0  # target_dose_mdose and dose_udose are in 0.001 mJ/cm²

# Host-side decoded blocks: engineering units, one row per sample. `t_host_s` is the host's monotonic clock at the
# frame's arrival (shared by the frame's samples); `t_device_us` is the device's own clock for each sample.
LIGHT_BLOCK = np.dtype(
    [
        ("t_host_s", "<f8"),
        ("t_device_us", "<i8"),
        ("seq", "<u2"),
        ("irradiance_mw_cm2", "<f4"),
        ("dose_mj_cm2", "<f4"),
        ("target_dose_mj_cm2", "<f4"),
        ("lamp_temp_c", "<f4"),
        ("shutter_open", "u1"),
        ("skin_contact", "u1"),
        ("armed", "u1"),
        ("fault_bits", "<u2"),
    ]
)
PEN_BLOCK = np.dtype(
    [
        ("t_host_s", "<f8"),
        ("t_device_us", "<i8"),
        ("seq", "<u2"),
        ("depth_set_mm", "<f4"),
        ("depth_mm", "<f4"),
        ("stroke_rate_hz", "<f4"),
        ("motor_current_ma", "<f4"),
        ("running", "u1"),
        ("skin_contact", "u1"),
        ("armed", "u1"),
        ("cartridge_strokes", "<u4"),
        ("fault_bits", "<u2"),
    ]
)


class FrameError(ValueError):
    """A frame that cannot be decoded: bad COBS, bad CRC, too short or too long."""


def crc16(data: bytes) -> int:
    return binascii.crc_hqx(data, 0xFFFF)


def cobs_encode(data: bytes) -> bytes:
    out = bytearray()
    for chunk in data.split(b"\x00"):
        while len(chunk) >= 254:
            out.append(0xFF)
            out += chunk[:254]
            chunk = chunk[254:]
        out.append(len(chunk) + 1)
        out += chunk
    return bytes(out)


def cobs_decode(enc: bytes) -> bytes:
    out = bytearray()
    i, n = 0, len(enc)
    while i < n:
        code = enc[i]
        if code == 0:
            raise FrameError("zero byte inside a COBS frame")
        j = i + code
        if j > n:
            raise FrameError("COBS block runs past the end of the frame")
        out += enc[i + 1 : j]
        i = j
        if code < 0xFF and i < n:
            out.append(0)
    return bytes(out)


def encode_frame(msg_type: int, seq: int, payload: bytes = b"") -> bytes:
    body = _HEAD.pack(msg_type, seq & 0xFFFF) + payload
    return cobs_encode(body + _CRC.pack(crc16(body))) + DELIMITER


@dataclass(frozen=True, slots=True)
class Frame:
    type: int
    seq: int
    payload: bytes


def decode_frame(encoded: bytes) -> Frame:
    """Decode one frame without its delimiter; raises FrameError."""
    raw = cobs_decode(encoded)
    if len(raw) < _HEAD.size + _CRC.size:
        raise FrameError(f"frame too short ({len(raw)} bytes)")
    if len(raw) > MAX_FRAME_BYTES:
        raise FrameTooLong(f"frame too long ({len(raw)} bytes)")
    body, (crc,) = raw[:-2], _CRC.unpack(raw[-2:])
    if crc16(body) != crc:
        raise FrameError("CRC mismatch")
    msg_type, seq = _HEAD.unpack_from(body)
    return Frame(msg_type, seq, body[_HEAD.size :])


class FrameTooLong(FrameError):
    """A frame longer than MAX_FRAME_BYTES."""


class FrameDecoder:
    """Splits a byte stream into frames; counts and skips whatever is not a valid frame.

    Feed it whatever a read returned; it keeps the unfinished tail. A corrupt frame costs exactly that frame: the
    next delimiter starts a fresh one. Bytes before the first delimiter (a port opened mid-frame) are the end of a
    frame sent before anyone listened: unless whole, they count in `cut_at_start_bytes`, not as a bad frame, and so
    does a frame corrupted at the very start, which cannot be told from a cut one (docs/protocol.md, Framing).
    """

    def __init__(self) -> None:
        self._tail = b""
        self.frames = 0
        self.bad_frames = 0  # CRC, COBS or length errors
        self.resyncs = 0  # times the decoder dropped bytes to find the next frame start
        self.bytes_in = 0
        self.too_long = 0  # frames longer than MAX_FRAME_BYTES (an answer that cannot be read: say so, not a timeout)
        self.cut_at_start_bytes = 0  # the end of a frame sent before this receiver started listening
        self._at_start = True  # no delimiter seen yet

    def feed(self, data: bytes) -> list[Frame]:
        self.bytes_in += len(data)
        parts = (self._tail + data).split(DELIMITER)
        self._tail = parts.pop()
        frames = []
        for part in parts:
            at_start, self._at_start = self._at_start, False
            if not part:
                continue
            try:
                frames.append(decode_frame(part))
            except FrameError as exc:
                if at_start:
                    self.cut_at_start_bytes += len(part)
                    continue
                self.bad_frames += 1
                self.resyncs += 1
                self.too_long += isinstance(exc, FrameTooLong)
                continue
            self.frames += 1
        if len(self._tail) > 2 * MAX_FRAME_BYTES:  # no delimiter for too long: garbage, drop it
            self._tail = b""
            self.bad_frames += 1
            self.resyncs += 1
            self.too_long += 1
            self._at_start = False
        return frames


# --- payload helpers -----------------------------------------------------------------------------------------------
def is_control(ch: str) -> bool:
    """A C0 or C1 control character or DEL (NUL, BEL, ESC, newline, U+0085 …): never shown raw. The device's words
    are cleaned by the wider rule of `drivers.textrule.is_unsafe` (format characters and separators too)."""
    return ord(ch) < 32 or 127 <= ord(ch) < 160


def text(payload: bytes) -> str:
    """A device's own words (FAULT, STATUS, REFUSE): UTF-8; a byte that is not shows as `?`, and every control,
    format (bidirectional, zero-width, BOM, soft hyphen), line or paragraph separator character as a space
    (`drivers.textrule`), so a message never carries U+FFFD, never breaks a line of the log or an event list, and never
    reverses or hides what follows it on a screen."""
    decoded = payload.decode("utf-8", errors="replace").replace("\ufffd", "?")
    return blank_unsafe(decoded).strip()


def clean_text(value: str) -> str:
    """`text` for words already decoded (a device's JSON, a scenario file's texts): a lone surrogate becomes `?`,
    control, format and separator characters (ESC, NUL, BEL, newlines, U+2028, U+202E, U+200B …) spaces, so no such
    text reaches a terminal, a window, a log or a file raw."""
    return text(value.encode("utf-8", errors="replace"))


def raw_if_unclean(payload: bytes) -> dict[str, str]:
    """{"raw_text_hex": …} when `text` had to change the device's bytes (not UTF-8, or an unsafe character of
    `drivers.textrule`, even one at an end that stripping alone would have dropped), so the original stays in the
    event's details (and the recording); {} for clean text."""
    try:
        decoded = payload.decode("utf-8")
        clean = decoded.strip() == text(payload) and not has_unsafe(decoded)
    except UnicodeDecodeError:
        clean = False
    return {} if clean else {"raw_text_hex": payload.hex()}


def identity_payload(acked_seq: int, info: dict) -> bytes:
    """IDENTITY payload: the sequence of the IDENTIFY it answers, then the JSON object."""
    return ACK_PAYLOAD.pack(acked_seq & 0xFFFF) + json.dumps(info, separators=(",", ":")).encode()


RAW_IDENTITY_KEY = "raw_json_hex"  # the IDENTITY's JSON bytes, when cleaning its texts or keys changed anything
GIVEN = " (given)"  # a device's own key named like the driver's is kept under its name with this added (once more)


def _set_aside(key: str) -> str:
    """A top-level key of a device's identity: `raw_json_hex` is the driver's alone, so the device's own
    `raw_json_hex`, or `raw_json_hex (given)` …, gets one more ` (given)` (the recorder's rule for its own notes,
    docs/recording-format.md): the bare name never holds what a device sent, no two keys meet, nothing is lost."""
    bare = key
    while bare.endswith(GIVEN):
        bare = bare.removesuffix(GIVEN)
    return key + GIVEN if bare == RAW_IDENTITY_KEY else key


def parse_identity(payload: bytes) -> dict:
    """The IDENTITY's JSON object; FrameError, in words (never the JSON library's text), if it is not one."""
    if len(payload) < ACK_PAYLOAD.size:
        raise FrameError("its identity is too short to hold anything")
    try:
        text = payload[ACK_PAYLOAD.size :].decode()
    except UnicodeDecodeError as exc:
        raise FrameError(f"its identity is not UTF-8 text (byte {exc.start})") from None
    try:
        info = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FrameError(f"its identity is not JSON (unreadable at character {exc.pos})") from None
    except RecursionError:
        raise FrameError("its identity is JSON nested too deeply to read") from None
    if not isinstance(info, dict):
        raise FrameError("its identity is JSON but not an object of named fields")
    cleaned = {_set_aside(k): v for k, v in _clean_json(info).items()}  # never spoofs the driver's key
    if json.dumps(cleaned, sort_keys=True) != json.dumps(info, sort_keys=True):
        # what cleaning changed (a text, a key; two keys that met as one; a key set aside) stays recoverable, as a
        # FAULT's or a STATUS's words do (raw_if_unclean): the device's own JSON, whole, goes with the identity to
        # the recording
        cleaned[RAW_IDENTITY_KEY] = payload[ACK_PAYLOAD.size:].hex()
    return cleaned



def _clean_json(value: Any) -> Any:
    """Every text of a device's JSON as `text` makes it: JSON escapes can carry what the bytes could not (a lone
    surrogate `\\udc80`, NUL, ESC): a lone surrogate becomes `?`, control characters spaces, so no identity can
    crash a log line, the store or a terminal (fresh tester of issue 12)."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {_clean_json(str(k)): _clean_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean_json(v) for v in value]
    return value


def telemetry_payload(header: np.ndarray, samples: np.ndarray) -> bytes:
    return header.tobytes() + samples.tobytes()


def split_telemetry(payload: bytes, header_dtype: np.dtype, sample_dtype: np.dtype) -> tuple[np.void, np.ndarray]:
    if len(payload) < header_dtype.itemsize:
        raise FrameError("telemetry shorter than its header")
    header = np.frombuffer(payload, header_dtype, count=1)[0]
    n = int(header["n"])
    if n == 0:
        raise FrameError("telemetry with no samples (n = 0)")
    if len(payload) != header_dtype.itemsize + n * sample_dtype.itemsize:
        raise FrameError(f"telemetry length does not match its {n} samples")
    period_us = int(header["period_us"])
    if period_us == 0:
        raise FrameError("telemetry with a sample period of 0 µs")
    if int(header["t0_us"]) + (n - 1) * period_us > DEVICE_CLOCK_MAX_US:
        raise FrameError(f"device clock {int(header['t0_us'])} µs is beyond the host's range (2^63 µs)")
    samples = np.frombuffer(payload, sample_dtype, count=n, offset=header_dtype.itemsize)
    unknown = samples["flags"] & (0xFF ^ FLAGS_KNOWN)
    if unknown.any():
        raise FrameError(f"telemetry flags with unknown bits 0x{int(unknown.max()):02x}")
    return header, samples


# Block fields the host fills itself (every block dtype starts with them); every other field comes from the wire.
HOST_FIELDS = ("t_host_s", "t_device_us", "seq")


def telemetry_decoder(header_dtype: np.dtype, sample_dtype: np.dtype, block_dtype: np.dtype,
                      channels: Sequence[Any]) -> Callable[[bytes, int, float], np.ndarray]:
    """The one telemetry decoder, built from a driver's declarations: `decode(payload, seq, t_host_s)` returns a
    block (one row of `block_dtype` per sample, engineering units) or raises FrameError (`split_telemetry`).

    Each block field other than HOST_FIELDS is read as its channel's `wire` says (drivers.types.Wire: a header or
    sample field, divided by its scale, or one flag bit). Raises ValueError at once, naming the field, if a block
    field has no channel, a channel no wire, or a wire a field that is not in the frame layout.
    """
    by_name = {c.name: c for c in channels}
    plan: list[tuple[str, str, float, int, bool]] = []
    for name in block_dtype.names or ():
        if name in HOST_FIELDS:
            continue
        channel = by_name.get(name)
        wire = getattr(channel, "wire", None)
        if wire is None:
            raise ValueError(f"the telemetry field {name!r} has no channel declaring where it travels on the wire")
        layout = header_dtype if wire.header else sample_dtype
        if wire.field not in (layout.names or ()):
            where = "header" if wire.header else "sample"
            raise ValueError(f"channel {name!r} is declared in the telemetry {where} field {wire.field!r}, which the "
                             "frame layout does not have")
        plan.append((name, wire.field, float(wire.scale), int(wire.flag), bool(wire.header)))

    def decode(payload: bytes, seq: int, t_host_s: float) -> np.ndarray:
        header, s = split_telemetry(payload, header_dtype, sample_dtype)
        n = len(s)
        block = np.empty(n, block_dtype)
        block["t_host_s"] = t_host_s
        block["t_device_us"] = int(header["t0_us"]) + np.arange(n, dtype=np.int64) * int(header["period_us"])
        block["seq"] = seq
        for name, field, scale, flag, in_header in plan:
            raw = header[field] if in_header else s[field]
            if flag:
                block[name] = (raw & flag) != 0
            elif scale != 1.0:
                block[name] = raw / scale
            else:
                block[name] = raw
        return block

    return decode
