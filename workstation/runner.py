"""The headless runner: a whole combined session in simulation, from a scenario file, with no window.

Patient, screening, areas and course go into a training store; the dose engine plans the visit; the session runs
the plan on the emulated devices through the real drivers while the scenario's timed events inject faults; the
recording and the store are closed; a summary is printed. Exit codes: 0 completed, 3 aborted by an interlock (the
recorder failing, e.g. a full disk, counts as one), 4 stopped by the operator, 5 ended by a device error, 2 bad input (the scenario, the plan refused, a folder that cannot be written).
"""

from __future__ import annotations

import datetime as dt
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from workstation.bus import BaseSink, CommandRecord, Event, now_s
from workstation.errors import UserError
from workstation.rig import Rig
from workstation.scenario import DEVICE_ACTIONS, Scenario, TimedEvent
from workstation.session import Session, State, Step

EXIT_COMPLETED, EXIT_BAD_INPUT, EXIT_INTERLOCK, EXIT_OPERATOR, EXIT_DEVICE = 0, 2, 3, 4, 5


@dataclass
class RunResult:
    exit_code: int
    state: str
    summary: dict
    recording: Path | None
    sha256: str | None


class ProgressPrinter(BaseSink):
    """A bus sink that prints what a trainer wants to follow: transitions, steps, trips, faults, alarms."""

    KINDS = {"state", "protocol", "interlock", "fault", "alarm", "connection", "fault_injected", "interlock_reset"}

    def __init__(self, out: Callable[[str], None]) -> None:
        self.out = out
        self.t0 = now_s()

    def on_event(self, event: Event) -> None:
        if event.kind in self.KINDS and not (event.kind == "protocol" and event.details.get("event") == "pass_started"):
            mark = "!!" if event.severity == "high" else "  "
            self.out(f"{event.t_host_s - self.t0:8.3f} s {mark} {event.message}")

    def on_command(self, record: CommandRecord) -> None:
        if record.result != "ack":
            self.out(f"{record.t_host_s - self.t0:8.3f} s    {record.device} {record.command}: {record.result}")


def prepare_plan(scenario: Scenario, store, library, device_model: str):
    """Enter the scenario's patient into the (training) store and plan today's visit. Returns (course, plan)."""
    from workstation.dose import plan_next_session

    protocol = library.get(scenario.protocol_id)
    today = dt.date.today()
    patient = store.find_patient(scenario.pseudonym) or store.create_patient(scenario.pseudonym)
    known = {item.id for item in library.tables.screening}
    unknown = set(scenario.screening_yes) - known
    if unknown:
        raise UserError(f"{scenario.path.name}: unknown screening item(s) {', '.join(sorted(unknown))}; "
                        f"known: {', '.join(sorted(known))}.")
    for item in library.tables.screening:
        store.add_screening_answer(patient.id, item.id, item.id in scenario.screening_yes, today,
                                   scenario.operator_id)
    if scenario.med_mj_cm2:
        store.add_med(patient.id, device_model, scenario.med_mj_cm2, today)
    areas = [store.find_or_create_area(patient.id, a.area_id, a.region, a.lesion, a.size_cm2, scenario.skin_type_roman,
                                       scar_age_months=a.scar_age_months, scar_kind=a.scar_kind, distinct_place=True)
             for a in scenario.areas]  # the scenario's areas have unique labels: each is its own place
    course = store.find_or_create_course(patient.id, protocol, [a.id for a in areas], today)
    plan = plan_next_session(store, library, course.id, today, device_model=device_model)
    return course, plan


def _schedule(events: tuple[TimedEvent, ...], rig: Rig, session: Session, operator: str,
              started: threading.Event, done: threading.Event, out: Callable[[str], None]) -> threading.Thread:
    def run() -> None:
        if not started.wait(120) or done.is_set():
            return
        t0 = now_s()
        for ev in events:
            if done.wait(max(0.0, t0 + ev.at_s - now_s())):
                return
            try:
                if ev.action in DEVICE_ACTIONS:
                    rig.inject(ev.device, ev.action, ev.value)
                elif ev.action == "estop":
                    session.estop(f"scenario at {ev.at_s:g} s")
                elif ev.action == "pause":
                    session.pause(operator, "paused by the scenario")
                else:
                    session.operator_stop(operator, f"operator stop at {ev.at_s:g} s")
            except UserError as exc:
                out(f"scenario event {ev.action} at {ev.at_s:g} s could not be done: {exc}")

    th = threading.Thread(target=run, name="scenario-events", daemon=True)
    th.start()
    return th


class _StepWatch(BaseSink):
    """Sets `started` when the first step begins: the scenario's clock starts there."""

    def __init__(self, started: threading.Event) -> None:
        self.started = started

    def on_event(self, event: Event) -> None:
        if event.kind == "protocol" and event.details.get("event") == "step_started":
            self.started.set()

def run_scenario(scenario: Scenario, record_dir: Path, *, store_path: Path | None = None,
                 out: Callable[[str], None] = print) -> RunResult:
    from workstation.protocols import load_library
    from workstation.store import ClinicStore

    library = load_library()
    if library.tables is None:
        raise UserError("The reference tables did not load; run `python main.py protocols check`.")
    library.get(scenario.protocol_id)  # a UserError naming the protocol if it is unknown
    tmp = None
    if store_path is None:
        tmp = tempfile.TemporaryDirectory(prefix="cicatrix-training-")
        store_path = Path(tmp.name) / "training.sqlite3"
    store = ClinicStore.open(store_path, training=True)
    rig = None
    recording = sha = recording_failure = None
    try:
        rig = Rig.simulation(seed=scenario.seed, light_warmup_s=scenario.light_warmup_s)
        model = rig.devices["light"].identity.model
        course, plan = prepare_plan(scenario, store, library, model)
        if plan.refused:
            raise UserError(f"The dose engine refused this session: {plan.refusal.reason} "
                            f"(first allowed {plan.refusal.first_allowed_date}).")
        specs = plan.execution_steps()
        if not specs:
            raise UserError("The plan has nothing to treat: " + plan.nothing_to_treat_reason())
        steps = [Step(**s, pass_duration_s=scenario.pass_duration_s) for s in specs]
        printer = ProgressPrinter(out)
        rig.bus.subscribe(printer)
        out(f"scenario: {scenario.title}" + (f" — {scenario.description}" if scenario.description else ""))
        for a in plan.areas:
            for reason in a.reasons:
                out(f"  plan {a.label}: {reason}")
        for w in plan.warnings:
            out(f"  warning: {w}")
        protocol = library.get(scenario.protocol_id)
        rig.start_recording(record_dir, patient_pseudonym=scenario.pseudonym, operator_id=scenario.operator_id,
                            protocol_id=protocol.id, protocol_version=str(protocol.version), plan=plan.to_dict())
        session = Session(rig.bus, rig.devices, rig.monitor, operator_id=scenario.operator_id, abort_on_trip=True)
        started, done = threading.Event(), threading.Event()
        rig.bus.subscribe(_StepWatch(started))
        session.connect(scenario.operator_id)
        session.load_plan(steps, scenario.operator_id)
        events = _schedule(scenario.events, rig, session, scenario.operator_id, started, done, out)
        try:
            final = session.run_all(scenario.operator_id)
        finally:
            done.set()
            events.join(timeout=2)
            session.close()
        if final == State.PAUSED:  # headless: nobody is there to resume
            why = next((r.note for r in reversed(session.results) if r.note), "the session was paused")
            session.abort("runner", why)
            final = session.state
        summary = session.summary()
        session_id = store.add_session(course.id, dt.date.today(), device_model=model, plan=plan.to_dict())
        store_treatments(store, session_id, session)
        recording, sha, recording_failure = close_recording(rig)
        if recording is not None and sha is not None:
            store.link_recording(session_id, recording, sha)
    finally:
        if rig is not None:
            rig.close()
        store.close()
        if tmp is not None:
            tmp.cleanup()
    code = EXIT_COMPLETED
    if final == State.ABORTED:
        operator = summary["abort_reason"].startswith(("operator stop", "stopped by the operator"))
        code = EXIT_INTERLOCK if summary["trips"] else EXIT_OPERATOR if operator else EXIT_DEVICE
    if recording_failure is not None:  # the recorder is an interlock too: the session stopped because of it
        code = EXIT_INTERLOCK
    _print_summary(out, scenario, summary, recording, sha, code, recording_failure)
    return RunResult(code, str(final), summary, recording, sha)


def store_treatments(store, session_id: int, session: Session) -> None:
    """Record in the store what each step delivered (the dose engine's history reads these)."""
    from workstation.store import Treatment

    for r in session.results:
        if r.outcome != "done" and not r.delivered_dose_mj_cm2 and not r.passes_done:
            continue
        s = r.step
        if s.modality == "light":
            t = Treatment(int(s.area_id), "light", dose_mj_cm2=round(r.delivered_dose_mj_cm2, 3))
        else:
            t = Treatment(int(s.area_id), "needling", depth_mm=s.depth_mm, stroke_rate_hz=s.stroke_rate_hz,
                          passes=r.passes_done)
        store.add_treatment(session_id, t)


def close_recording(rig: Rig) -> tuple[Path | None, str | None, str | None]:
    """Close the session's recording: (path, sha256, failure). `failure` says why the recorder stopped early or
    could not close the file (a full disk); sha256 is None when no checksum could be written."""
    from workstation.recording import RecordingError

    rec = rig.recorder
    if rec is None:
        return None, None, None
    try:
        path, sha = rig.stop_recording()
    except RecordingError as exc:
        return rec.path, None, str(exc)
    return path, sha, None if rec.error is None else str(rec.error)


def _print_summary(out, scenario: Scenario, summary: dict, recording, sha, code: int,
                   recording_failure: str | None = None) -> None:
    out("")
    out(f"session {summary['state']}" + (f": {summary['abort_reason']}" if summary["abort_reason"] else ""))
    out(f"steps done: {summary['steps_done']} of {summary['steps_planned']}")
    for r in summary["results"]:
        what = (f"{r['delivered_dose_mj_cm2']:g} mJ/cm²" if r["modality"] == "light"
                else f"{r['passes_done']} passes")
        out(f"  area {r['area']} {r['modality']}: {r['outcome']}, {what}" + (f" ({r['note']})" if r["note"] else ""))
    for t in summary["trips"]:
        out(f"  interlock {t['interlock']} on {t['device']} ({t['latency_ms']:.2f} ms): {t['message']}")
    if recording_failure is not None:
        out(f"recording stopped early: {recording_failure}")
    if recording is not None:
        for line in _trip_reviews(recording):
            out(f"    {line}")
        out(f"recording: {recording} (sha256 {sha or 'not written'})")
    outcome = "completed" if code == EXIT_COMPLETED else "aborted"
    verdict = "as expected" if outcome == scenario.expect else f"NOT as expected ({scenario.expect})"
    out(f"outcome: {outcome}, {verdict}; exit code {code}")


def _trip_reviews(recording) -> list[str]:
    """What the recorded telemetry shows after each trip (`inspect` gives the same lines)."""
    from workstation.recording import Recording, RecordingError
    from workstation.recording.summary import review_text, summarize

    try:
        with Recording.open(recording) as rec:
            return [f"{r.event.details.get('interlock', '?')}: {review_text(r)}" for r in summarize(rec).trip_reviews]
    except RecordingError as exc:  # a recording the disk could not finish: say so, the summary goes on
        return [f"the recording cannot be reviewed: {exc}"]
