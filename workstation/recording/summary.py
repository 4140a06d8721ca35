"""What `main.py inspect` prints: devices, duration, samples, gaps, events, interlock trips, dose per area.

Dose per area: an exposure is a run of light samples with the shutter open; its dose is the largest dose the device
integrated during it (the device restarts its count at each exposure). The area is the `area` in the details of the
latest event before the exposure started (protocol steps carry it); without one it is "unassigned".

A non-finite value (NaN, ±inf) in a channel was not measured: every figure here (and the runner's trip review, the
recovery of a crashed session's doses) skips the samples whose channels *it reads* are not finite (`finite_rows`),
and the summary says how many samples had a non-finite value in any channel, per device over the whole recording
(`nonfinite_samples`: the one count, which the PDF report gives too). A time or duration from host times that are
not finite is said "unknown (no finite host times)" (words.seconds), never "nan s" or a silent 0.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from workstation.bus import Event, detail_number
from workstation.checksum import sha256_of, sha256_saved_in
from workstation.recording.format import checksum_path, signature_path
from workstation.recording.reader import Recording
from workstation.recording.rows import undecodable_words
from workstation.recording.signature import check as check_signature
from workstation.recording.signature import names_this_recording, no_sidecars_words
from workstation.session.roles import LIGHT, recorded_active_channel
from workstation.words import counted, seconds

SCAN_ROWS = 1 << 20
GAP_FACTOR = 1.5  # a step of the device clock longer than 1.5 sample periods is a gap
REVIEW_BEFORE_S, REVIEW_AFTER_S = 0.5, 2.0  # the telemetry read around a stop


@dataclass(frozen=True, slots=True)
class Gap:
    t_s: float  # session time of the last sample before the gap
    length_s: float
    cause: str  # "samples missing" or "device clock restarted"


@dataclass(frozen=True, slots=True)
class Exposure:
    area: str
    t_start_s: float
    t_end_s: float
    dose_mj_cm2: float


@dataclass(slots=True)
class DeviceSummary:
    name: str
    description: str
    samples: int
    samples_lost: int
    first_s: float  # NaN: no sample has a finite host time
    last_s: float
    gaps: list[Gap] = field(default_factory=list)
    nonfinite_samples: int = 0  # `nonfinite_samples(rec, name)`: skipped in the dose and the trip reviews

    @property
    def rate_hz(self) -> float:
        span = self.last_s - self.first_s
        return (self.samples - 1) / span if self.samples > 1 and span > 0 else 0.0


@dataclass(frozen=True, slots=True)
class TripReview:
    """What the recorded telemetry shows around an interlock trip. Sample times are the device clock's, placed on the
    host clock by the promptest frame around the trip (`sample_times`: to within the transport delay):
    `stopped_ms` is when the first sample showed the device inactive, relative to the stop command being written
    (negative: the device had stopped itself before, e.g. on its own contact sensor); for the light,
    `dose_after_stop_mj_cm2` is what it still delivered after the stop was written."""

    event: Event
    device: str
    active_at_stop: bool | None  # None: no telemetry of the device around the trip
    stopped_ms: float | None  # None: not active in the window, still active at its end, or no telemetry after
    dose_after_stop_mj_cm2: float | None = None
    no_telemetry_after: bool = False  # active in the last sample, and none came after the stop (link lost)
    lost_after: int = 0  # with no_telemetry_after: samples after it the recorder counted lost (it had stopped)

@dataclass(slots=True)
class Summary:
    devices: list[DeviceSummary]
    events_by_kind: Counter
    interlocks: list[Event]
    exposures: list[Exposure]
    trip_reviews: list[TripReview] = field(default_factory=list)
    dose_samples_skipped: int = 0  # light samples whose time, dose or emission flag is NaN/±inf: not in `exposures`
    areas_at_no_time: int = 0  # events naming an area whose host time is NaN/±inf: not used to assign exposures
    dose_samples_lost: int = 0  # light samples the recorder counted lost (a queue ceiling, a full disk): not in them
    step_doses_mj_cm2: dict[str, float] = field(default_factory=dict)  # per area, the session's own step_ended counts

    @property
    def dose_per_area_mj_cm2(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for e in self.exposures:
            out[e.area] = out.get(e.area, 0.0) + e.dose_mj_cm2
        return out


def summarize(rec: Recording) -> Summary:
    devices = [_device(rec, name) for name in rec.devices]
    exposures: list[Exposure] = []
    skipped = lost = 0
    for name, info in rec.devices.items():
        channel = recorded_active_channel(info) if info.driver_kind == LIGHT else None
        if channel is not None and "dose_mj_cm2" in (info.dtype.names or ()):
            found, n_bad = _exposures(rec, name, channel)
            exposures, skipped, lost = exposures + found, skipped + n_bad, lost + rec.samples_lost(name)
    interlocks = [e for e in rec.events if e.kind == "interlock"]
    step_doses: dict[str, float] = {}
    for e in rec.events:
        if e.kind == "protocol" and e.details.get("event") == "step_ended" and e.details.get("modality") == "light":
            area = str(e.details.get("area", "?"))
            step_doses[area] = step_doses.get(area, 0.0) + detail_number(e.details, "delivered_dose_mj_cm2", 0.0)
    return Summary(devices, Counter(e.kind for e in rec.events), interlocks, exposures,
                   [review_trip(rec, e) for e in interlocks], skipped,
                   sum(1 for e in rec.events if "area" in e.details and not math.isfinite(e.t_host_s)), lost,
                   step_doses)


def finite_rows(rows: np.ndarray, channels: Iterable[str] | None = None) -> tuple[np.ndarray, int]:
    """The telemetry rows whose float `channels` (default: every float channel) are all finite, and how many were
    dropped (a NaN or ±inf is not a measurement). A figure names the channels it reads (a NaN lamp temperature must
    not hide the dose its row measured)."""
    wanted = None if channels is None else set(channels)
    names = [n for n in rows.dtype.names or () if rows.dtype[n].kind == "f" and (wanted is None or n in wanted)]
    if not len(rows) or not names:
        return rows, 0
    ok = np.ones(len(rows), dtype=bool)
    for n in names:
        ok &= np.isfinite(rows[n])
    return (rows, 0) if ok.all() else (rows[ok], int(len(rows) - ok.sum()))


def nonfinite_samples(rec: Recording, device: str) -> int:
    """How many samples of `device`, over the whole recording, have a NaN or ±inf in any float channel (`finite_rows`
    with no channel named). The one count `inspect` and the PDF report give (per device, whole recording)."""
    return sum(finite_rows(rec.rows(device, i, i + SCAN_ROWS))[1] for i in range(0, rec.samples(device), SCAN_ROWS))


def nonfinite_words(n: int) -> str:  # `nonfinite_samples` in words, the same in `inspect` and the report
    return f"{counted(n, 'sample')} with a non-finite value (NaN or ±inf) over the whole recording"


def sample_times(rows: np.ndarray) -> np.ndarray:
    """Host time of each sample (s), on the device clock: when the device took it, placed on the host clock by the
    promptest frame of `rows` (the least arrival minus device time), so a frame that arrived late (a held-up
    workstation) is not moved later. Where the device clock does not run forward (a restart), each sample takes its
    frame's arrival less how much earlier it was taken than the frame's last sample (a frame's samples share `seq`)."""
    if len(rows) == 0:
        return np.empty(0)
    t_dev = rows["t_device_us"].astype(np.int64)
    if np.all(np.diff(t_dev) > 0):
        return t_dev * 1e-6 + float(np.min(rows["t_host_s"] - t_dev * 1e-6))
    starts = np.flatnonzero(np.r_[True, rows["seq"][1:] != rows["seq"][:-1]])
    frame_last = np.repeat(np.maximum.reduceat(t_dev, starts), np.diff(np.r_[starts, len(rows)]))
    return rows["t_host_s"] - (frame_last - t_dev) * 1e-6


def review_trip(rec: Recording, event: Event) -> TripReview:
    """Read the device's telemetry around the stop command: was it active, when did it stop, what did it deliver."""
    device = str(event.details.get("device", ""))
    t_stop = detail_number(event.details, "stop_written_t_host_s", event.t_host_s)
    info = rec.devices.get(device)
    names = set(info.dtype.names or ()) if info is not None else set()
    flag = recorded_active_channel(info) if info is not None else None  # as the safety monitor reads it
    t0 = rec.meta.t0_host_s
    rows = rec.telemetry(device, t_stop - t0 - REVIEW_BEFORE_S, t_stop - t0 + REVIEW_AFTER_S) if flag else None
    if rows is not None:
        rows = finite_rows(rows, (flag, "dose_mj_cm2", "t_host_s"))[0]
    if rows is None or len(rows) == 0:
        return TripReview(event, device, None, None)
    t = sample_times(rows)
    active = rows[flag].astype(bool)
    i = int(np.searchsorted(t, t_stop, "right")) - 1  # the last sample taken by the time the stop was written
    if i < 0 or active[i]:
        if i == len(rows) - 1:
            lost = rec.losses(device)  # or the recording had stopped (a full disk): its later samples counted lost
            return TripReview(event, device, True, None, no_telemetry_after=True,
                              lost_after=int(lost["samples_lost"][lost["t_last_host_s"] > t[-1]].sum()))
        i = max(i, 0)
        off = np.flatnonzero(~active[i:])
        if len(off) == 0:
            return TripReview(event, device, True, None)  # still active at the end of the window
        k = i + int(off[0])
        dose = float(rows["dose_mj_cm2"][k - 1] - rows["dose_mj_cm2"][i]) if "dose_mj_cm2" in names and k > i else None
        return TripReview(event, device, True, (t[k] - t_stop) * 1000.0, dose)
    was_on = np.flatnonzero(active[: i + 1])
    if len(was_on) == 0:
        return TripReview(event, device, False, None)
    return TripReview(event, device, False, (t[was_on[-1] + 1] - t_stop) * 1000.0)


def _device(rec: Recording, name: str) -> DeviceSummary:
    info = rec.devices[name]
    n = rec.samples(name)
    t0 = rec.meta.t0_host_s
    s = DeviceSummary(name, f"{info.driver_name} v{info.driver_version}, {info.model} s/n {info.serial_number}, "
                      f"firmware {info.firmware}", n, rec.samples_lost(name), 0.0, 0.0)
    if n == 0:
        return s
    s.first_s, s.last_s = math.nan, math.nan
    period_us = 1e6 / info.nominal_rate_hz if info.nominal_rate_hz > 0 else None
    for i in range(0, n, SCAN_ROWS):
        rows = rec.rows(name, i - (1 if i else 0), i + SCAN_ROWS)  # one row of overlap to see gaps across scans
        s.nonfinite_samples += finite_rows(rows[1:] if i else rows)[1]  # as nonfinite_samples counts, in this read
        t_dev, t_host = rows["t_device_us"], rows["t_host_s"]
        timed = t_host[np.isfinite(t_host)]  # a host time that is not finite is no time: first and last skip it
        if len(timed):
            s.first_s = float(timed[0]) - t0 if math.isnan(s.first_s) else s.first_s
            s.last_s = float(timed[-1]) - t0
        if period_us is None:
            continue
        step = np.diff(t_dev)
        for k in np.flatnonzero((step > GAP_FACTOR * period_us) | (step <= 0)):
            if step[k] <= 0:
                s.gaps.append(Gap(float(t_host[k]) - t0, float(t_host[k + 1] - t_host[k]), "device clock restarted"))
            else:
                s.gaps.append(Gap(float(t_host[k]) - t0, float(step[k] - period_us) / 1e6, "samples missing"))
    return s


def _exposures(rec: Recording, name: str, active_channel: str) -> tuple[list[Exposure], int]:
    """The light's exposures from its telemetry, and how many samples were left out (a NaN or ±inf time, dose or
    emission flag: `finite_rows`)."""
    t0 = rec.meta.t0_host_s
    skipped = 0
    area_events = [e for e in rec.events if "area" in e.details and math.isfinite(e.t_host_s)]  # sorted, bisected
    area_t = np.array([e.t_host_s for e in area_events])
    out: list[Exposure] = []
    start_t: float | None = None
    dose = 0.0
    last_t = 0.0

    def close(t_end: float) -> None:
        k = int(np.searchsorted(area_t, start_t, "right")) - 1
        area = str(area_events[k].details["area"]) if k >= 0 else "unassigned"
        out.append(Exposure(area, start_t - t0, t_end - t0, dose))

    n = rec.samples(name)
    for i in range(0, n, SCAN_ROWS):
        rows, n_bad = finite_rows(rec.rows(name, i, i + SCAN_ROWS), (active_channel, "dose_mj_cm2", "t_host_s"))
        skipped += n_bad
        if not len(rows):
            continue
        on = rows[active_channel].astype(bool)
        t, d = rows["t_host_s"], rows["dose_mj_cm2"]
        edges = np.flatnonzero(np.diff(on.astype(np.int8))) + 1
        bounds = [0, *edges.tolist(), len(rows)]
        for a, b in zip(bounds[:-1], bounds[1:], strict=False):
            if a == b:
                continue
            if on[a]:
                if start_t is None:
                    start_t, dose = float(t[a]), 0.0
                dose = max(dose, float(d[a:b].max()))
            elif start_t is not None:
                close(float(t[a]))
                start_t = None
        last_t = float(t[-1]) if len(t) else last_t
    if start_t is not None:
        close(last_t)
    return out, skipped


@dataclass(frozen=True)
class ChecksumCheck:
    """The file compared with the SHA-256 saved beside it at close and with the workstation's signature of it
    (workstation.recording.signature): `intact` is True (matches, and signed by a trusted workstation, or not signed
    and recorded before signatures; or a valid signature of this file beside a .sha256 that is missing, empty,
    unreadable or wrong, named as the sidecar at fault), False (the file changed since it was closed, its signature
    says it was changed or made by an unknown key, or a recording made to be signed has no readable signature of its
    own, e.g. another file's beside it) or None (no checksum to compare with). `text` says which, in words."""

    intact: bool | None
    text: str
    sidecar_wrong: bool = False
    """Intact by its signature, but the .sha256 beside it is missing, empty, unreadable or does not match: that
    checksum file was changed or replaced (say so: whoever changed it may have tried more)."""
    sha256: str = ""
    """The file's own SHA-256 as it is now, when the check computed it ("" when there was nothing to compare it
    with)."""


def check_checksum(path: Path, progress: Callable[[int, int], None] | None = None) -> ChecksumCheck:
    """Hash the file (`progress(done_bytes, total_bytes)` after each chunk) and compare with its .sha256 file and its
    signature. The signature covers the file's own SHA-256: a valid one proves the file intact even when the .sha256
    is missing, empty, unreadable or another file's (that sidecar is then named as the one that is wrong)."""
    saved = checksum_path(path)
    sig_there = signature_path(path).is_file()
    expected, saved_name, problem = _read_saved(saved)
    if problem is not None:
        if not sig_there:
            if not saved.is_file():
                return ChecksumCheck(None, no_sidecars_words(path, saved))
            # No .sig either: a recording made to be signed says SIGNATURE MISSING whatever its .sha256 holds, as with
            # no .sha256 (a fresh tester of issue 12: an empty one, what a crash while closing once left, hid it)
            signed = check_signature(path, "")
            return ChecksumCheck(None, f"{problem}: the file cannot be checked"
                                 + (f"; {signed.text}" if signed.status == "missing" else ""))
        digest = sha256_of(path, progress)
        signed = check_signature(path, digest)
        if signed.ok:
            return ChecksumCheck(True, f"{signed.text} (the signature proves the file is as it was signed); but "
                                       f"{problem} (its line should read \"{digest}  {path.name}\")", True, digest)
        return ChecksumCheck(False if signed.status in ("modified", "untrusted") else None, f"{problem}; {signed.text}",
                             sha256=digest)
    digest = sha256_of(path, progress)
    signed = check_signature(path, digest)
    if digest != expected:
        if signed.ok:  # the signature covers the file's own SHA-256: the file is as signed, its .sha256 is not
            return ChecksumCheck(True, f"{signed.text} (the signature proves the file unchanged); but {saved.name} "
                                       "does not match it: that checksum file was changed or replaced, not the "
                                       f"recording (the file's SHA-256 is {digest})", True, digest)
        mine = names_this_recording(path, saved_name)
        if not mine:  # another recording's .sha256 beside it: no evidence either way, not a tamper alarm
            whose = f"is the checksum of another file ({saved_name}), not of this recording" if mine is False else \
                (f"does not match and names {saved_name}: it is another file's checksum, or this file was renamed "
                 "and changed after it was closed")
            return ChecksumCheck(None if signed.status in ("unsigned", "unreadable") else False,
                                 f"{saved.name} {whose}; {signed.text}", sha256=digest)
        return ChecksumCheck(False, f"SHA-256 DOES NOT MATCH {saved.name}: the file changed after it was closed; "
                                    f"{signed.text}", sha256=digest)
    if signed.status in ("modified", "other", "untrusted", "unreadable", "missing"):
        # Whoever edits a recording can rewrite its .sha256 too: the signature is what proves the origin.
        return ChecksumCheck(False, f"SHA-256 matches {saved.name}, but {signed.text}", sha256=digest)
    named = "" if names_this_recording(path, saved_name) is not False else (
        f" (though {saved.name} names {saved_name}, another session's file: its line was edited or written for a "
        "copy; the digest is this file's)")  # a fresh tester of issue 12: it said "SHA-256 matches" and no more
    return ChecksumCheck(True, f"SHA-256 matches{named}; {signed.text}", sha256=digest)


def _read_saved(saved: Path) -> tuple[str, str, str | None]:
    """The SHA-256 (lower-case hex) and file name in a .sha256, or a sentence saying why it holds none."""
    if not saved.is_file():
        return "", "", f"{saved.name} is {'not a file' if saved.exists() else 'missing'}"
    try:
        text = saved.read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        return "", "", f"{saved.name} cannot be read ({exc.strerror or exc})"
    expected = sha256_saved_in(text)
    if expected is None:
        return "", "", f"{saved.name} is empty or holds no SHA-256 (cut short, or not a sha256sum line)"
    words = text.split()
    return expected, words[1].removeprefix("*") if len(words) > 1 else "", None


def checksum_status(path: Path) -> str:
    return check_checksum(path).text


def review_text(r: TripReview) -> str:
    """The review in words. Its times are from the stop being written to the device's link or, when the stop could
    not be sent (the trip's "stop" detail, workstation.session.outcome.stop_written), from the trip itself."""
    from workstation.session.outcome import stop_written

    stop = "the stop was written" if stop_written(r.event.details) else "the trip (the stop could not be sent)"
    if r.active_at_stop is None:
        return f"telemetry: no samples of {r.device or 'the device'} around the stop"
    if r.no_telemetry_after and r.lost_after:
        return (f"telemetry: {r.device} was active in its last sample in the file; the recorder counted "
                f"{counted(r.lost_after, 'later sample')} lost (it had stopped recording), so the file cannot show "
                "when it stopped: see its events (a device_state stop) or its fault log")
    if r.no_telemetry_after:
        return (f"telemetry: {r.device} was active in its last sample and sent none after {stop} (the link was "
                f"lost): only the device's own watchdog could stop it; check its next telemetry or its fault log")
    if r.stopped_ms is None:
        if r.active_at_stop:
            return (f"telemetry: {r.device} STILL ACTIVE {REVIEW_AFTER_S:g} s after {stop} (or the recording ends "
                    "first)")
        return f"telemetry: {r.device} was not active"
    if not r.active_at_stop:
        return f"telemetry: {r.device} had stopped by itself {-r.stopped_ms:.1f} ms before {stop}"
    dose = f", delivering {r.dose_after_stop_mj_cm2:.2f} mJ/cm² meanwhile" if r.dose_after_stop_mj_cm2 is not None \
        else ""
    return f"telemetry: {r.device} stopped {r.stopped_ms:.1f} ms after {stop}{dose}"


def format_summary(rec: Recording, s: Summary) -> str:
    """`inspect`'s text: every time through words.seconds ("unknown" when not finite), every code (interlock cause,
    fault, event kind) in words through the one wording table (workstation.ui.wording)."""
    from workstation.ui.wording import humanise, scrub, trip_cause_sentence

    m = rec.meta
    lines = [
        f"{rec.path.name}: Cicatrix recording, format {m.format_version}",
        f"  session {m.session_uuid} ({m.mode}), started {m.start_time_utc}, ended {m.end_time_utc or '-'}",
        f"  patient {m.patient_pseudonym}, operator {m.operator_id}, protocol {m.protocol_id} v{m.protocol_version}, "
        f"software {m.software_version}",
        f"  duration {seconds(rec.known_duration_s)}",
    ]
    if rec.partial:
        lines.append(f"  PARTIAL: {rec.partial_reason}")
    check = check_checksum(rec.path)
    lines.append(f"  WARNING: {check.text}; what follows comes from the file as it is now" if check.intact is False
                 else f"  checksum: {check.text}")
    if rec.undecodable_rows:
        lines.append(f"  WARNING: {undecodable_words(rec.undecodable_rows)}")
    lines.append("devices:")
    for d in s.devices:
        lines.append(f"  {d.name}: {d.description}")
        span = (f"from {seconds(d.first_s)} to {seconds(d.last_s)} ({d.rate_hz:.1f} Hz)" if math.isfinite(d.first_s)
                else f"at times {seconds(None)}")
        lines.append(f"    {counted(d.samples, 'sample')} {span}, {d.samples_lost} lost by the recorder")
        lengths = [g.length_s for g in d.gaps if math.isfinite(g.length_s)]
        if d.nonfinite_samples:
            lines.append(f"    {nonfinite_words(d.nonfinite_samples)}: not measurements, skipped in the dose and the "
                         "trip reviews")
        unknown = f" ({len(d.gaps) - len(lengths)} of length {seconds(None)})" if len(lengths) < len(d.gaps) else ""
        lines.append(f"    gaps: {len(d.gaps)}" + (f", {sum(lengths):.3f} s in all{unknown}" if d.gaps else ""))
        for g in d.gaps[:10]:
            length = f"{g.length_s * 1000:.1f} ms" if math.isfinite(g.length_s) else f"length {seconds(None)}"
            lines.append(f"      at {seconds(g.t_s)}: {length}, {g.cause}")
        if len(d.gaps) > 10:
            lines.append(f"      ... and {len(d.gaps) - 10} more")
    kinds = ", ".join(f"{humanise(k)} {n}" for k, n in sorted(s.events_by_kind.items())) or "none"
    lines.append(f"events: {sum(s.events_by_kind.values())} ({kinds}); commands: {len(rec.commands)}")
    lines.append(f"interlock trips: {len(s.interlocks)}")
    for r in s.trip_reviews:
        e = r.event
        latency = detail_number(e.details, "latency_ms", math.nan)
        lat = f", latency {latency:.1f} ms" if latency == latency else ""
        lines.append(f"  at {seconds(e.t_host_s - m.t0_host_s)}: {scrub(e.message)} (cause: "
                     f"{trip_cause_sentence(e.details)}{lat})")
        lines.append(f"    {review_text(r)}")
    lines.append(f"dose delivered per area ({counted(len(s.exposures), 'exposure')}):")
    for area, dose in sorted(s.dose_per_area_mj_cm2.items()):
        lines.append(f"  {area}: {dose:.1f} mJ/cm²")
    # the session's own count at each step's end, where the telemetry cannot give it all (a fresh tester of issue 12)
    steps = "; ".join(f"{scrub(a)} {d:.1f} mJ/cm²" for a, d in sorted(s.step_doses_mj_cm2.items()))
    records = (f"the session's own step records say: {steps}" if steps
               else "the session's own step records are in its events")
    if s.dose_samples_skipped:  # never a silent "none" or a silently low dose
        lines.append(f"  {'unknown from the telemetry' if not s.exposures else 'perhaps more'}: "
                     f"{counted(s.dose_samples_skipped, 'light sample')} with no usable time, dose or emission flag "
                     f"(NaN or ±inf) left out; {records}")
    elif not s.exposures and not s.dose_samples_lost:
        lines.append("  none")
    if s.dose_samples_lost:  # a full disk, the queue ceiling: the doses above lack what those samples measured
        lines.append(f"  perhaps more: {counted(s.dose_samples_lost, 'light sample')} lost by the recorder are not in "
                     f"these doses; {records}")
    if s.areas_at_no_time:  # never a silent "unassigned", never a silently wrong area
        lines.append(f"  the areas given may be wrong: {counted(s.areas_at_no_time, 'event')} naming an area at no "
                     "time (NaN or ±inf) could not be placed; the session's own step records are in its events")
    return "\n".join(lines)
