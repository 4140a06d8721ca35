"""What a session report says, read from the recording (the raw truth), not from the screen.

`read_report(path, store=None)` returns a `ReportData`: the session's identity (pseudonym only), the plan, each step's
own time span with its telemetry (irradiance and dose against the target for the light; depth against the set depth
and stroke rate for the pen), the interlock trips, the aftercare, and, when a clinic store is given, the response
recorded for that session in words. No Qt here: `report.py` draws it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workstation.bus import detail_number
from workstation.dose.plan import aftercare_for
from workstation.session import roles
from workstation.session.outcome import delivered_something, started_modalities
from workstation.ui.alarm_groups import condition_lines
from workstation.ui.wording import (
    device_name,
    interlock_name,
    lesion_name,
    modality_name,
    protocol_title,
    quantity,
    region_name,
)
from workstation.words import counted, seconds

# NHS Tayside erythema grades (CLINICAL.md), in words for the report.
ERYTHEMA_WORDS = {0: "no redness", 1: "faint pink, gone within a day", 2: "clearly red, still there about 2 days later",
                  3: "sunburn-like, hot and painful for 2–3 days", 4: "blisters, 4–5 days"}
MARGIN_S = 0.5  # telemetry shown before and after each step's own span
LIGHT_SERIES = (("irradiance_mw_cm2", "irradiance", "mW/cm²"), ("dose_mj_cm2", "dose", "mJ/cm²"),
                ("target_dose_mj_cm2", "target", "mJ/cm²"))
PEN_SERIES = (("depth_mm", "depth", "mm"), ("depth_set_mm", "set depth", "mm"),
              ("stroke_rate_hz", "stroke rate", "Hz"))


@dataclass
class StepSpan:
    """One step as the recording has it: times in session seconds, the telemetry of its device over its span."""

    index: int
    modality: str
    area: str
    t_start_s: float
    t_end_s: float
    outcome: str = "not ended"
    planned: dict[str, Any] = field(default_factory=dict)
    delivered_dose_mj_cm2: float = math.nan  # this exposure's own dose
    before_mj_cm2: float = 0.0  # given in the same step by earlier exposures (a resumed step)
    passes_done: int = 0
    note: str = ""
    t_s: np.ndarray = field(default_factory=lambda: np.empty(0))
    series: dict[str, np.ndarray] = field(default_factory=dict)

    def describe(self) -> str:
        p = self.planned
        if self.modality == "light":
            resumed = (f" (this exposure {quantity(self.delivered_dose_mj_cm2, 'mJ/cm²')}, after "
                       f"{quantity(self.before_mj_cm2, 'mJ/cm²')} before the stop)" if self.before_mj_cm2 > 0 else "")
            return (f"{modality_name('light')} on {self.area}: "
                    f"{quantity(self.before_mj_cm2 + self.delivered_dose_mj_cm2, 'mJ/cm²')} delivered of "
                    f"{quantity(p.get('target_dose_mj_cm2'), 'mJ/cm²')} planned{resumed} — {self.outcome}")
        passes = p.get("passes")
        planned = "—" if passes is None else f"{passes:g}"
        return (f"{modality_name('needling')} on {self.area}: {quantity(p.get('depth_mm'), 'mm')}, "
                f"{quantity(p.get('stroke_rate_hz'), 'Hz')}, {self.passes_done} of {planned} "
                f"pass{'es' if passes != 1 else ''} — {self.outcome}")


WARNING_PREFIX = "WARNING:"  # a line of the report drawn bold and red


@dataclass
class ReportData:
    recording: Path
    mode: str
    pseudonym: str
    operator: str
    protocol: str
    start_utc: str
    duration_s: float
    plan: dict[str, Any]
    steps: list[StepSpan]
    trips: list[str]
    aftercare: list[str]
    responses: list[str] | None  # None: no store given; [] : none entered yet
    sha256: str = ""
    extra: list[str] = field(default_factory=list)  # further lines (a trainer's notes on the trainee)
    integrity_warning: str = ""  # set by `check_integrity` when the file is not proven intact: printed in the PDF
    proven_intact: bool = True  # False once `check_integrity` found the file not proven intact

    def check_integrity(self) -> str:
        """Check the recording against its .sha256 and signature (workstation.recording.summary.check_checksum, which
        hashes the whole file: call it off the GUI thread). Returns and keeps the warning, "" when intact."""
        from workstation.checksum import sha256_of
        from workstation.recording.summary import check_checksum

        check = check_checksum(self.recording)
        # the file's own SHA-256 as it is now, never what its .sha256 claims (a second fresh tester of issue 12: another
        # file's, a cut one or "hello" was printed beside a valid signature, with no warning)
        self.sha256 = check.sha256 or sha256_of(self.recording)
        self.proven_intact = bool(check.intact)
        if check.intact and check.sidecar_wrong:  # the recording is proven by its signature; its .sha256 is not
            self.integrity_warning = (f"{WARNING_PREFIX} the checksum file beside {self.recording.name} is wrong, not "
                                      f"the recording: {check.text}.")
        else:
            self.integrity_warning = "" if check.intact else (
                f"{WARNING_PREFIX} the recording {self.recording.name} is not proven intact: {check.text}. This "
                "report comes from the file as it is now.")
        return self.integrity_warning

    ended: bool = True  # the recording holds the session's end (False: a crash, or the program was closed)
    stopped_early: str = ""  # why its recorder closed it before the session's end (a full disk), "" if it did not

    def outcome(self) -> str:
        """The session's outcome word as the screen's summary gives it (workstation/session/outcome.py): completed (every
        planned step done), partial (something delivered, not everything) or aborted (nothing delivered), from the
        recording's steps, each resumed step counted once."""
        planned = len(self.plan.get("steps", [])) or len({s.index for s in self.steps})
        done = {s.index for s in self.steps if s.outcome == "done"}
        if planned and len(done) >= planned:
            return "completed"
        given = any(delivered_something(s.delivered_dose_mj_cm2 or 0, s.passes_done) for s in self.steps)
        return "partial" if given else "aborted"

    def outcome_sentence(self) -> str:
        planned = len(self.plan.get("steps", [])) or len({s.index for s in self.steps})
        done = len({s.index for s in self.steps if s.outcome == "done"})
        text = f"Session {self.outcome()}: {done} of {planned} step{'s' if planned != 1 else ''} done."
        if not self.ended and self.stopped_early:  # the program went on; its recording could not
            text += (f" The recording stopped before the session ended ({self.stopped_early.rstrip('.')}): the "
                     "amounts below are what it holds, at least what was delivered (the session's own summary, on "
                     "the screen or in the store, has the rest).")
        elif not self.ended:
            text += (" The session was interrupted (a crash, or the program was closed; or its recording stopped on a "
                     "full disk or a file size limit and could not say so in the file) before it ended: the amounts "
                     "below are what the recording's telemetry shows was delivered.")
        return text

    @property
    def training(self) -> bool:
        return self.mode != "clinical"

    def lines(self) -> list[str]:
        """The report's text: one paragraph each, "## " starts a heading."""
        p = self.plan
        out = [f"Patient {self.pseudonym} · operator {self.operator} · {self.start_utc[:16].replace('T', ' ')} UTC · "
               f"{'TRAINING (simulation): not a clinical record' if self.training else 'clinical session'}",
               f"Protocol {self.protocol} · session {p.get('session_number', '—')} of course "
               f"{p.get('course_id', '—')} · recording {self.recording.name}",
               *([self.integrity_warning] if self.integrity_warning else []), self.outcome_sentence(), "## Areas"]
        for a in p.get("areas", []):
            out.append(f"{a.get('label')}: {lesion_name(str(a.get('lesion_type')))}, "
                       f"{region_name(str(a.get('body_region')))}, treatment: {modality_name(str(a.get('modality')))}")
        out.append("## Steps (each plotted below over its own time span)")
        out += [f"Step {s.index}: {s.describe()} ({step_span_words(s)})" for s in self.steps] \
            or ["No step was started."]
        uv = [s.delivered_dose_mj_cm2 for s in self.steps if s.modality == "light" and s.delivered_dose_mj_cm2 >= 0]
        out.append("## UV record")
        out.append(f"UV delivered this session: {quantity(sum(uv), 'mJ/cm²')} in {counted(len(uv), 'exposure')}." if uv
                   else "No UV was delivered this session.")
        out += _uv_record_lines(self.plan)  # before and with this session
        if self.trips:
            out.append("## Interlocks and alarms")
            out += self.trips
        out.append("## Response")
        if self.responses is None:
            out.append("Not read: give the clinic store (--store) to include the response recorded for this session.")
        else:
            out += self.responses or ["No response entered yet: enter it at the next visit."]
        out += self.extra
        out.append("## Aftercare given")
        out += self.aftercare or ["Avoid sun for 24–48 h; sunscreen from 24 h."]
        if self.sha256:
            out.append(f"Recording SHA-256: {self.sha256}"
                       + ("" if self.proven_intact else " (NOT PROVEN INTACT: see the warning at the top)"))
        out.append("Audit trail (who changed what, when, why): `trail show`; its integrity: `trail verify`.")
        return out


def read_report(path: Path | str, store: Any = None) -> ReportData:
    """Read a closed (or partial) recording into a ReportData; `store`, a ClinicStore, adds the response.

    Raises UserError (in words) if the file is not a readable recording."""
    from workstation.checksum import sha256_saved_in
    from workstation.recording import Recording
    from workstation.recording.format import checksum_path

    rec = Recording.open(Path(path))  # RecordingError (a UserError) says what is wrong with the file
    path = Path(path)
    try:
        meta, t0 = rec.meta, rec.meta.t0_host_s
        steps = _steps(rec, t0)
        trips = condition_lines(list(rec.events), t0)  # grouped as the alarm panel groups them
        trips += _stop_lines(list(rec.events))
        plan = rec.plan or {}
        sha = ""  # what its .sha256 holds, if it holds a SHA-256 at all; check_integrity puts the file's own
        side = checksum_path(path)
        try:
            sha = (sha256_saved_in(side.read_text(encoding="ascii", errors="replace")) or "") if side.is_file() else ""
        except OSError:  # unreadable: said by check_integrity
            sha = ""
        data = ReportData(path, meta.mode, meta.patient_pseudonym, meta.operator_id,
                          protocol_title(meta.protocol_id, meta.protocol_version), meta.start_time_utc, rec.duration_s, plan,
                          steps, trips, aftercare_for(plan.get("aftercare_by_modality", {}), plan.get("aftercare", []),
                                                      started_modalities((s.modality, s.outcome) for s in steps)),
                          None, sha)
        data.extra += _nonfinite_lines(rec)
        data.ended = any(e.kind == "state" and e.details.get("to") in ("completed", "aborted") for e in rec.events)
        if rec.partial and meta.end_time_utc is not None and not data.ended:  # closed early by its recorder
            data.stopped_early = rec.partial_reason or "its recorder stopped"
            for step in data.steps:
                if step.outcome == UNENDED:
                    step.outcome = RECORDING_STOPPED
    finally:
        rec.close()
    if store is not None:
        data.responses = _responses(store, data)
    return data


UNENDED = "interrupted: the recording ends during this step (a crash, the program closed, or a full disk)"
RECORDING_STOPPED = "interrupted: the recording stopped during this step (what it holds is a lower bound)"


def step_span_words(s: StepSpan) -> str:
    """A step's span in session seconds, "unknown" in words where its host times are not finite."""
    if math.isfinite(s.t_start_s) and math.isfinite(s.t_end_s):
        return f"{s.t_start_s:.1f}–{s.t_end_s:.1f} s"
    if not (math.isfinite(s.t_start_s) or math.isfinite(s.t_end_s)):
        return f"times {seconds(None)}"
    return f"from {seconds(s.t_start_s, 1)} to {seconds(s.t_end_s, 1)}"


def _nonfinite_lines(rec: Any) -> list[str]:
    """Per device, over the whole recording: the count and words `inspect` gives (summary.nonfinite_samples)."""
    from workstation.recording.summary import nonfinite_samples, nonfinite_words

    out = []
    for name in rec.devices:
        if n := nonfinite_samples(rec, name):
            out.append(f"Telemetry of the {device_name(name)}: {nonfinite_words(n)} "
                       f"{'is not a measurement: it is' if n == 1 else 'are not measurements: they are'} left out of "
                       "the curves (a gap).")
    return out


def _stop_lines(events: list[Any]) -> list[str]:
    """For each interlock that stopped a device: how the stop went (written after so many ms, or not written
    because the device was gone: its own watchdog stopped it), per device, in words."""
    from workstation.session.outcome import trip_stop_words

    return [f"{interlock_name(str(e.details.get('interlock')))} on the {device_name(str(e.details.get('device')))}: "
            f"{trip_stop_words(detail_number(e.details, 'latency_ms', math.nan), str(e.details.get('stop', 'stop written')))}"
            for e in events if e.kind == "interlock" and "latency_ms" in e.details
            and e.details.get("interlock") != "estop"]


def _steps(rec: Any, t0: float) -> list[StepSpan]:
    """Each step run's span; a run with no end event (the program ended during it) takes what it delivered from
    the recording's telemetry (light dose, workstation.session.journal.dose_given) or its passes started (needling)."""
    from workstation.session.journal import dose_given

    light = roles.recorded_of_kind(rec.devices, roles.LIGHT)  # the recorded devices by their drivers' kinds
    light_channel = roles.recorded_active_channel(rec.devices[light]) if light is not None else None

    spans: list[StepSpan] = []
    end = math.nan if rec.known_duration_s is None else rec.known_duration_s  # NaN: said "unknown", never 0
    started_passes: dict[int, int] = {}
    for e in rec.events:
        d = e.details
        if e.kind == "protocol" and d.get("event") == "pass_started" and spans:
            started_passes[len(spans) - 1] = started_passes.get(len(spans) - 1, 0) + 1
        if e.kind != "protocol" or d.get("event") not in ("step_started", "step_ended"):
            continue
        if d["event"] == "step_started":
            planned = {k: (v if (v := detail_number(d, k, math.nan)) == v else None)  # None: not readable
                       for k in ("target_dose_mj_cm2", "depth_mm", "stroke_rate_hz", "passes")}
            spans.append(StepSpan(int(detail_number(d, "step_index", len(spans))) + 1, str(d.get("modality")),
                                  str(d.get("area", "")), e.t_host_s - t0, end, planned=planned))
        elif spans:
            s = spans[-1]
            s.t_end_s, s.outcome = e.t_host_s - t0, str(d.get("outcome", "ended"))
            s.delivered_dose_mj_cm2 = detail_number(d, "delivered_dose_mj_cm2", math.nan)
            s.passes_done, s.note = int(detail_number(d, "passes_done", 0)), str(d.get("note", "") or "")
    for i, s in enumerate(spans):  # a run with no end event: what the recording shows was given
        last = i + 1 == len(spans)
        if s.outcome == StepSpan.outcome:
            s.outcome, s.passes_done = UNENDED, started_passes.get(i, 0)
            s.t_end_s = s.t_end_s if last else spans[i + 1].t_start_s
            to = s.t_end_s + (MARGIN_S if last else 0.0)  # not finite: to the end of the telemetry
            if s.modality == roles.LIGHT and light is not None and light_channel is not None \
                    and math.isfinite(s.t_start_s):
                got = dose_given(rec.telemetry(light, s.t_start_s, to if math.isfinite(to) else None), light_channel)
                s.delivered_dose_mj_cm2 = round(got, 2)
    given: dict[int, float] = {}  # per step: the dose of its earlier exposures (the device restarts at 0)
    for s in spans:
        if s.modality == "light":
            s.before_mj_cm2 = given.get(s.index, 0.0)
            if math.isfinite(s.delivered_dose_mj_cm2):
                given[s.index] = s.before_mj_cm2 + s.delivered_dose_mj_cm2
    for s in spans:
        device = light if s.modality == roles.LIGHT else roles.recorded_of_kind(rec.devices, roles.NEEDLING)
        if device is None:
            continue
        if not (math.isfinite(s.t_start_s) and math.isfinite(s.t_end_s)):
            continue  # no finite host time to place its telemetry: no curve
        rows = rec.telemetry(device, max(0.0, s.t_start_s - MARGIN_S), s.t_end_s + MARGIN_S)
        s.t_s = rows["t_host_s"] - t0
        for channel, _label, _unit in (LIGHT_SERIES if s.modality == roles.LIGHT else PEN_SERIES):
            if channel in rows.dtype.names:
                s.series[channel] = rows[channel].astype(np.float64)
        if s.modality == roles.LIGHT:  # dose so far in the step against the step's planned total
            planned = float(s.planned.get("target_dose_mj_cm2") or math.nan)
            within = s.t_s >= s.t_start_s
            if "dose_mj_cm2" in s.series:
                s.series["dose_mj_cm2"] = np.where(within, s.series["dose_mj_cm2"] + s.before_mj_cm2,
                                                   s.series["dose_mj_cm2"])
            if "target_dose_mj_cm2" in s.series and math.isfinite(planned):
                s.series["target_dose_mj_cm2"] = np.where(within, planned, s.series["target_dose_mj_cm2"])
    return spans


def _responses(store: Any, data: ReportData) -> list[str]:
    """The responses the store holds for the session whose recording this is, in words."""
    patient = store.find_patient(data.pseudonym)
    if patient is None:
        return []
    labels = {a.id: a.label for a in store.areas(patient.id)}
    for course in store.courses(patient.id):
        for rec in store.history(course.id):
            if rec.recording_path and Path(rec.recording_path).name == data.recording.name:
                return [_response_words(labels.get(r.area_id, "area"), r) for r in rec.responses]
    return []


def _response_words(label: str, r: Any) -> str:
    parts = []
    if r.erythema_grade is not None:
        parts.append(f"erythema grade {r.erythema_grade} ({ERYTHEMA_WORDS.get(r.erythema_grade, 'unknown')})")
    if r.erythema_duration_h is not None:
        parts.append(f"redness lasted {r.erythema_duration_h:g} h")
    if r.blistering:
        parts.append("blistering")
    if r.pain_0_10 is not None:
        parts.append(f"pain {r.pain_0_10} of 10")
    if r.repigmentation_band is not None:
        parts.append(f"repigmentation {r.repigmentation_band.replace('-', '–')} %")
    if r.notes:
        parts.append(f"notes: {r.notes}")
    return f"{label}: " + ("; ".join(parts) if parts else "nothing recorded")


def _uv_record_lines(plan: dict[str, Any]) -> list[str]:
    """The plan's own UV record in the plan's words (SessionPlan.uv_record_lines); none for a recording whose plan
    predates it or cannot be read back."""
    from workstation.dose.plan import SessionPlan

    if not plan.get("uv_record"):
        return []
    try:
        return SessionPlan.from_dict(plan).uv_record_lines()
    except (KeyError, TypeError, ValueError):
        return []
