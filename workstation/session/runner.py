"""The headless runner: a whole combined session in simulation, from a scenario file, with no window.

Patient, screening, areas and course go into a training store; the dose engine plans the visit; the session runs
the plan on the emulated devices through the real drivers while the scenario's timed events inject faults; the
recording and the store are closed; a summary is printed. The exit code follows from why the session ended
(`AbortCause`, drivers/codes.py, set by the session and the visit), through one table, `EXIT_CODES`: 0 completed,
3 aborted by an interlock (the recorder failing, e.g. a full disk, counts as one), 4 stopped by the operator, 5 ended
by a device error, 2 bad input (the scenario, the plan refused, a folder that cannot be written).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from drivers.codes import AbortCause
from workstation.bus import BaseSink, CommandRecord, Event, now_s
from workstation.errors import UserError, signal_behind
from workstation.session.outcome import EXIT_CODES, not_started_summary
from workstation.session.scenario import DEVICE_ACTIONS, Scenario, TimedEvent
from workstation.session.session import SessionError, State
from workstation.session.step_runs import STEP_END_WAIT_S
from workstation.words import counted

EXIT_COMPLETED, EXIT_BAD_INPUT, EXIT_INTERLOCK, EXIT_OPERATOR, EXIT_DEVICE = (
    EXIT_CODES[c] for c in (AbortCause.NONE, AbortCause.BAD_INPUT, AbortCause.INTERLOCK, AbortCause.OPERATOR,
                            AbortCause.DEVICE))


@dataclass
class RunResult:
    exit_code: int
    state: str
    summary: dict
    recording: Path | None
    sha256: str | None


class ProgressPrinter(BaseSink):
    """A bus sink that prints what a trainer wants to follow: transitions, steps, trips, faults, alarms."""

    KINDS = {"state", "protocol", "interlock", "fault", "alarm", "connection", "fault_injected", "interlock_reset",
             "recording"}

    NOT_IN_FILE = {"before": " (before the recording began: in the log file, not in the recording)",
                   "closed": " (after the recording closed: in the log file, not in the recording)"}

    def __init__(self, out: Callable[[str], None], recording_state: Callable[[], str] = lambda: "open") -> None:
        self.out = out
        self.t0 = now_s()
        self.recording_state = recording_state  # rig.Rig.recording_state: a line the file does not hold says so

    def on_event(self, event: Event) -> None:
        if event.kind in self.KINDS and not (event.kind == "protocol" and event.details.get("event") == "pass_started"):
            mark = "!!" if event.severity == "high" else "  "
            where = self.NOT_IN_FILE.get(self.recording_state(), "")
            self.out(f"{event.t_host_s - self.t0:8.3f} s {mark} {_words(event)}{where}")

    def on_command(self, record: CommandRecord) -> None:
        if record.result != "ack" and not (record.command == "reset" and record.result.startswith("refused")):
            # a refused reset is said by the reset's own sentence (which cause remains, what to do)
            from workstation.ui.wording import scrub

            self.out(f"{record.t_host_s - self.t0:8.3f} s    {record.device} {record.command}: "
                     f"{scrub(record.result)}{self.NOT_IN_FILE.get(self.recording_state(), '')}")


def _words(event: Event) -> str:
    """An event's message for a person: library text and identifiers in words (the window's wording table), each
    cleared interlock named once."""
    from workstation.ui.wording import interlock_name, scrub

    if event.kind == "interlock_reset":
        names = dict.fromkeys(interlock_name(str(i)) for i in event.details.get("cleared", []))
        return f"interlocks reset by {event.details.get('who', 'the operator')}: {', '.join(names)}"
    return scrub(event.message)


def _schedule(events: tuple[TimedEvent, ...], visit, operator: str,
              started: threading.Event, done: threading.Event, out: Callable[[str], None]) -> threading.Thread:
    rig, session = visit.rig, visit.session

    def run() -> None:
        from workstation.ui.wording import interlock_name

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
                elif ev.action == "reset":
                    cleared = visit.reset_interlocks()
                    names = dict.fromkeys(interlock_name(t.interlock) for t in cleared)
                    out(f"scenario reset at {ev.at_s:g} s: " + (", ".join(names) or "the devices' latched faults"))
                elif ev.action == "resume":  # as an operator's Resume, enabled once the interrupted step has ended
                    session.wait_step_ended(STEP_END_WAIT_S)
                    session.resume(operator)
                elif ev.action == "crash":
                    out(f"scenario crash at {ev.at_s:g} s: the runner kills itself (SIGKILL)")
                    os.kill(os.getpid(), signal.SIGKILL)
                else:
                    session.operator_stop(operator, f"operator stop at {ev.at_s:g} s")
            except (UserError, SessionError) as exc:
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

def _one_line_at_a_time(out: Callable[[str], None]) -> Callable[[str], None]:
    """`out` called by one thread at a time, so each line is whole (print writes a line and its newline apart: two
    threads' lines could merge)."""
    lock = threading.Lock()

    def line(text: str) -> None:
        with lock:
            out(text)

    return line


def run_scenario(scenario: Scenario, record_dir: Path, *, store_path: Path | None = None,
                 out: Callable[[str], None] = print, share: Path | None = None,
                 pending_signal: Callable[[], BaseException | None] = lambda: None,
                 settled: Callable[[], None] = lambda: None) -> RunResult:
    """The scenario's visit through the visit service (the window uses the same), aborting on any trip. With
    `share`, the closed recording is then copied there and verified (one line says how it went; a share that is
    down never changes the exit code). `pending_signal()`: the exception of a signal that came (SIGTERM, Ctrl+C),
    raised again before the treatment, each step and the end in case C code swallowed it (cli_session);
    `settled()` once the session is saved (or refused): a signal after it no longer changes what is printed."""
    def checkpoint() -> None:
        if (came := pending_signal()) is not None:
            raise came

    out = _one_line_at_a_time(out)  # lines come from the device, safety and scenario threads too
    try:
        from workstation.session.visit import StartRefused, Visit

        visit = Visit.training(scenario, record_dir, store_path=store_path)
    except BaseException as exc:  # a signal while planning (Visit.training closed what it opened)
        if (came := signal_behind(exc)) is None:
            raise
        _say_not_started(out, came)
        raise came from None
    signalled: BaseException | None = None  # SIGTERM (SystemExit 143, cli_session) or Ctrl+C mid-session
    recorder = None
    try:
        checkpoint()
        for closed in visit.crashed:
            out(closed.told)
        plan, rig = visit.plan, visit.rig
        visit.check_plan()
        printer = ProgressPrinter(out, lambda: rig.recording_state)
        rig.bus.subscribe(printer)
        out(f"scenario: {scenario.title}" + (f" — {scenario.description}" if scenario.description else ""))
        for a in plan.areas:
            for reason in a.reasons:
                out(f"  plan {a.label}: {reason}")
        for w in plan.warnings:
            out(f"  warning: {w}")
        started, done = threading.Event(), threading.Event()
        rig.bus.subscribe(_StepWatch(started))
        # A scenario that resumes after a trip lets trips pause the session (as the window does); others abort.
        resumes = [ev for ev in scenario.events if ev.action == "resume"]
        try:
            checkpoint()
            visit.begin(abort_on_trip=not resumes, t0_host_s=printer.t0)  # one origin: the lines and the file
        except StartRefused as exc:  # nothing given: the session is closed as aborted; the cause gives the exit code
            settled()
            code = EXIT_CODES[exc.cause]
            out(str(exc))
            closed = exc.closed
            summary = not_started_summary(str(exc), exc.cause, rig.monitor.trips, len(plan.steps),
                                          closed.recorded_trips if closed is not None else None)
            _say_trips(out, summary["trips"])  # what latched it, and the file that holds it (tester of the 11th)
            if closed is not None and closed.failure:  # its recording failed too (a full disk: a fresh tester)
                out(f"recording stopped early: {closed.failure}")
            path, sha = (exc.closed.path, exc.closed.sha256) if exc.closed is not None else (None, None)
            if path is not None:
                out(f"recording: {path} ({exc.closed.checksum_words})")
            out(f"outcome: not started; exit code {code}")
            return RunResult(code, str(State.ABORTED), summary, path, sha)
        session = visit.session
        out(f"{visit.store.session_label(visit.session_id)} in the store: in progress")
        events = _schedule(scenario.events, visit, scenario.operator_id, started, done, out)
        try:
            visit.run_all(checkpoint)
            while resumes and (session.state == State.ARMED or (session.state == State.PAUSED and events.is_alive())):
                if session.state == State.ARMED:
                    visit.run_all(checkpoint)
                else:
                    time.sleep(0.02)  # paused: the scenario's reset and resume are still to come
                    checkpoint()
            checkpoint()
            final = session.state
        finally:
            done.set()
            events.join(timeout=2)
        if final == State.PAUSED and rig.monitor.held_cause is None:  # headless: nobody is there to resume
            # (held, a failed recording or store ended it: visit.end says so, Session.finish)
            why = next((r.note for r in reversed(session.results) if r.note), None) or session.latched_cause() or \
                "the session was paused"  # an E-stop between steps is named (a fresh tester, 19th session)
            # what paused it ended it: a trip, a device failing its step, or the scenario's own pause
            session.abort("runner", why, session.pause_cause if session.pause_cause != AbortCause.NONE
                          else AbortCause.DEVICE)
        saved = visit.end()
        settled()
        final, summary, recording, sha = session.state, saved.summary, saved.recording, saved.sha256
        recording_failure, checksum_words = saved.recording_failure, saved.checksum_words
        store_failure = saved.store_failure
    except BaseException as exc:  # a signal: the session closes as the window's does on SIGTERM, saved
        if (signalled := signal_behind(exc)) is None:
            raise
        recorder = visit.rig.recorder  # closed by visit.close, then read for the summary
        if visit.session is not None and visit.is_open():
            visit.session.operator_stop(visit.operator, f"{_signal_words(signalled)}, the program was closed during "
                                        "the session")
    finally:
        visit.close()
    if signalled is not None:
        _print_signalled(out, scenario, visit, recorder, signalled)
        raise signalled
    cause = AbortCause(summary["abort_cause"]) if final == State.ABORTED else AbortCause.NONE
    if recording_failure is not None:  # both stop the session as an interlock does (a failed recording named first)
        cause = AbortCause.RECORDING
    elif store_failure is not None:
        cause = AbortCause.STORE
    code = EXIT_CODES[cause]
    _print_summary(out, scenario, summary, recording, checksum_words, code, recording_failure, store_failure)
    if share is not None and recording is not None and sha is not None:
        from workstation.recording.share import copy_after_run

        out(copy_after_run(share, recording, sha, store_path))
    return RunResult(code, str(final), summary, recording, sha)


def _signal_exit_code(exc: BaseException) -> int:
    """The exit status a run ended by a signal gives: SystemExit's (128 + the signal, cli_session), 130 for Ctrl+C."""
    code = getattr(exc, "code", None)
    return code if isinstance(code, int) else 130


def _signal_words(exc: BaseException) -> str:
    code = _signal_exit_code(exc)
    if isinstance(exc, KeyboardInterrupt) or code == 128 + signal.SIGINT:
        return "interrupted (Ctrl+C)"
    try:
        name = signal.Signals(code - 128).name
    except ValueError:
        return "ended by a request to stop"
    return f"terminated by a signal ({name})"


def _print_signalled(out, scenario: Scenario, visit, recorder, exc: BaseException) -> None:
    """The summary a normal end or STOP prints, for a run a signal ended (the session already closed by
    visit.close: devices stopped, recording closed with its checksum, the store's row closed), with the cause."""
    from workstation.recording import RecordingError
    from workstation.session.rig import Closed

    code, words = _signal_exit_code(exc), _signal_words(exc)
    if visit.session is None:
        _say_not_started(out, exc)
        return
    saved = visit.saved
    if saved is not None:  # it ended and was saved before the signal came
        _print_summary(out, scenario, saved.summary, saved.recording, saved.checksum_words, code,
                       saved.recording_failure, saved.store_failure, ended_by=words)
        return
    closed = Closed(None, None, None)
    if recorder is not None:
        try:  # closed already by visit.close: this gives its checksum, it does not close it again
            closed = Closed.of(recorder, recorder.close())
        except RecordingError as err:
            closed = Closed(recorder.path, None, str(err))
    summary = dict(visit.session.summary())
    found: list = []
    if visit.closed_unsaved is not None:  # the outcome the store's row was closed with (Visit._close_unsaved): a
        summary["state"], found = visit.closed_unsaved  # step cut off mid-run has no result, its recording shows
    _print_summary(out, scenario, summary, closed.path, closed.checksum_words, code, closed.failure,
                   ended_by=words, delivered=_deliveries_words(found, visit.session))


def _say_not_started(out, exc: BaseException) -> None:
    out(f"outcome: not started ({_signal_words(exc)}); exit code {_signal_exit_code(exc)}")


def _deliveries_words(found: list, session) -> str:
    """What the closed recording showed each area received (as the store journals it), in words; "" for nothing."""
    labels = {str(s.area_id): s.area_label for s in session.steps}
    return "; ".join(f"{t.modality} on {labels.get(str(t.area_id), t.area_id)}: " +
                     (f"{t.dose_mj_cm2:g} mJ/cm²" if t.modality == "light" else counted(t.passes or 0, "pass",
                                                                                        "passes"))
                     for t in found)


def _print_summary(out, scenario: Scenario, summary: dict, recording, checksum_words: str, code: int,
                   recording_failure: str | None = None, store_failure: str | None = None,
                   ended_by: str | None = None, delivered: str = "") -> None:
    out("")
    from workstation.ui.wording import scrub

    out(f"session {summary['state']}" + (f": {scrub(summary['abort_reason'])}" if summary["abort_reason"] else ""))
    out(f"steps done: {summary['steps_done']} of {summary['steps_planned']}")
    for r in summary["results"]:
        what = (f"{r['delivered_dose_mj_cm2']:g} mJ/cm²" if r["modality"] == "light"
                else counted(r['passes_done'], 'pass', 'passes'))
        out(f"  area {r['area']} {r['modality']}: {r['outcome']}, {what}" + (f" ({r['note']})" if r["note"] else ""))
    if delivered:
        out(f"  delivered, as the recording shows: {delivered}")
    _say_trips(out, summary["trips"])
    if recording_failure is not None:
        out(f"recording stopped early: {recording_failure}")
    if store_failure is not None:
        out(f"store not written: {store_failure}")
    if recording is not None:
        for line in _trip_reviews(recording):
            out(f"    {line}")
        out(f"recording: {recording} ({checksum_words})")
    # One vocabulary: the session's own outcome word (completed / partial / aborted, workstation/session/outcome.py). A
    # scenario's `expect` says whether the run should go to the end ("completed") or stop early ("aborted": a
    # partial or an aborted session).
    outcome = summary["state"]
    ran_to_end = outcome == "completed"  # every step done (the exit code may still say what failed after: below)
    early = "" if ran_to_end else " (stopped early)"
    expected = ran_to_end == (scenario.expect == "completed")
    want = "to run to the end" if scenario.expect == "completed" else "to stop early"
    verdict = "as expected" if expected else f"NOT as expected (the scenario expects it {want})"
    if ran_to_end and code != EXIT_COMPLETED and ended_by is None:  # a fresh tester of issue 12: "completed (stopped
        # early)" for a disk that filled after the last step; the code is the recording's or the store's failure
        early = f" (every step done), {verdict}, but the {'recording' if recording_failure else 'store'} failed"
        verdict = "said above"
    elif ended_by is not None and outcome == "completed":  # every step done, then the signal before End session
        early, verdict = f" (every step done), then {ended_by}", "before the session was ended"
    elif ended_by is not None:  # a signal ended the run: the scenario's expectation was not put to the test
        early, verdict = f", stopped early: {ended_by}", "so the scenario did not run to its end"
    out(f"outcome: {outcome}{early}, {verdict}; exit code {code}")


def _say_trips(out, trips: list[dict]) -> None:
    """One line per trip of a summary's "trips" (outcome.trip_rows)."""
    from workstation.session.outcome import NOT_RECORDED, trip_stop_words
    from workstation.ui.wording import device_name, interlock_name, scrub

    for t in trips:
        out(f"  {interlock_name(t['interlock'])} interlock on the {device_name(t['device'])} "
            f"({trip_stop_words(t['latency_ms'], t.get('stop', 'stop written'))}): {scrub(t['message'])}"
            + (NOT_RECORDED if t.get("in_recording") is False else ""))


def _trip_reviews(recording) -> list[str]:
    """What the recorded telemetry shows after each trip (`inspect` gives the same lines)."""
    from workstation.recording import Recording, RecordingError
    from workstation.recording.summary import review_text, summarize
    from workstation.ui.wording import interlock_name

    try:
        with Recording.open(recording) as rec:
            return [f"{interlock_name(str(r.event.details.get('interlock', '?')))}: {review_text(r)}"
                    for r in summarize(rec).trip_reviews]
    except RecordingError as exc:  # a recording the disk could not finish: say so, the summary goes on
        return [f"the recording cannot be reviewed: {exc}"]
