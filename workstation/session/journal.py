"""The session journal: the store holds a true record of a session while it runs, and after a crash.

A session row is written 'in_progress' when treatment starts, with the process running it and its recording's path.
Each time a step ends, is interrupted or is run again after a resume, the area's running total for that modality
(dose from the light's telemetry, depth, passes started) replaces its treatment row, so a resumed step adds to its
own row. At the end the row is closed completed, partial or aborted.

If the process dies, its row stays 'in_progress'. On the next start (the window or `main.py session`),
`close_crashed_sessions` closes every such row whose process is gone as 'crashed', taking each area's delivered dose
and passes from the recording (the larger of the recording's and the journal's), so the next plan counts them:
the minimum interval, the cumulative cap.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from workstation.bus import detail_number
from workstation.processes import process_alive, process_token  # noqa: F401 - the journal's own names
from workstation.session import roles
from workstation.session.session import Session
from workstation.store.records import Treatment
from workstation.words import counted

if TYPE_CHECKING:
    from workstation.session.course_lease import CourseLease

log = logging.getLogger(__name__)


def treatments_of(session: Session) -> list[Treatment]:
    """Each (area, modality)'s running total in this session, from the session's step runs."""
    totals: dict[tuple[int, str], Treatment] = {}
    for o in session.step_outcomes():
        key = (int(o["area"]), o["modality"])
        if not (o["outcome"] == "done" or o["delivered_dose_mj_cm2"] or o["passes_done"]):
            continue
        prev = totals.get(key)
        if o["modality"] == "light":
            dose = o["delivered_dose_mj_cm2"] + ((prev.dose_mj_cm2 or 0.0) if prev else 0.0)
            totals[key] = Treatment(key[0], "light", dose_mj_cm2=round(dose, 3))
        else:
            passes = o["passes_done"] + ((prev.passes or 0) if prev else 0)
            totals[key] = Treatment(key[0], "needling", depth_mm=o["depth_mm"], stroke_rate_hz=o["stroke_rate_hz"],
                                    passes=passes)
    return list(totals.values())


def journal_steps(store, session_id: int, session: Session) -> None:
    """Write every (area, modality)'s running total of this session into its treatment row."""
    for t in treatments_of(session):
        store.journal_treatment(session_id, t)


def journal_start(store, plan, session_date, *, device_model: str | None,
                  recording_path: Path | str | None = None, lease: CourseLease | None = None,
                  start_key: str | None = None) -> int:
    """The start of treatment in the store: the session row 'in_progress' for `plan` (a dose-engine SessionPlan) on
    `session_date`, with this process and the recording's path, and the course's `lease` (CourseLease.take, deferred
    or held) written in the same transaction: one commit. Returns the session id. The visit service starts every
    treatment here (window, headless runner, bench/store.py); UserError in words when the store refuses (a stale
    plan; leases.LeaseRefused when another room won the lease since `lease` was checked): nothing is written.
    `start_key`: the start's idempotency key (default: the lease's holder token, one per take): the same start sent
    again after an error whose commit went through (a lost acknowledgement) returns the same session, never a
    second one."""
    if start_key is None and lease is not None:
        start_key = lease.lease.holder
    sid = store.add_session(plan.course_id, session_date, device_model=device_model, plan=plan.to_dict(),
                            state="in_progress", process=process_token(), recording_path=recording_path,
                            lease=None if lease is None else lease.lease, start_key=start_key)
    if lease is not None:
        lease.written_by_start()
    return sid


def journal_end(store, session_id: int, treatments: list[Treatment], state: str, note: str = "", *,
                lease: CourseLease | None = None) -> None:
    """The end of a session in the store: each (area, modality)'s total delivered (`treatments`, as treatments_of
    gives them) written into its treatment row, then the row closed with its outcome (completed, partial, aborted,
    crashed) and the sentence saying why, then the course's `lease` released, in one transaction (all of it or none;
    one commit, not one per row). On a refusal (UserError) nothing is written and the lease stays held: the caller
    closes the session and releases the lease as at every other ending (CourseLease.release)."""
    held = lease if lease is not None and lease.written else None
    if held is not None:
        held.ending()
    try:
        released = store.end_session(session_id, treatments, state, note, lease=None if held is None else held.lease)
    except BaseException:
        if held is not None:
            held.ending(False)
        raise
    if held is not None:
        held.ending(released)


@dataclass
class Closed:
    """A session closed by crash recovery: `treatments` what its recording showed, `note` the outcome sentence
    stored with it, `from_recording` True only when its doses were taken from its recording (read on this disk):
    a session with no recording, or whose recording is elsewhere or unreadable, keeps the doses its journal shows
    and its note says so."""

    session_id: int
    treatments: list[Treatment]
    note: str
    from_recording: bool = True
    label: str = ""
    """The session as users read it (store.session_label): "session 3 of the course (record no. 12)"."""
    ended_unsaved: bool = False
    """It was not a crash: its program ended it and closed its recording, but the store never heard the end (the
    store could not be written, or the program stopped between the two)."""
    store_role: str = "clinic"
    """The store that closed it: "clinic" or "training" (ClinicStore.role), as the sentence names it."""

    @property
    def told(self) -> str:
        """What the runner and the window tell the user, one sentence (first letter as the label has it)."""
        if self.ended_unsaved:
            return f"{self.label} ended, but the {self.store_role} store never heard its end: closed now as {self.note}"
        state, more, rest = self.note.partition("; ")  # the doses' words go with the state, before what follows it
        doses = ", with the doses its recording shows" if self.from_recording else ""
        return (f"{self.label} was left open by a program that stopped (crash or power loss): closed as "
                f"{state}{doses}{more}{rest}.")


def journal_doses(store, session_id: int, course_id: int) -> str:
    """What the journal holds as given in the session, in words: "210 mJ/cm² of light on left cheek; 2 needling
    passes on back", or "0 mJ/cm² of light and no needling pass" when nothing was journalled."""
    labels = {}
    given = []
    for rec in store.history(course_id):
        if rec.id != session_id:
            continue
        for t in rec.treatments:
            if t.area_id not in labels:
                labels[t.area_id] = store.area(t.area_id).label
            if t.modality == "light" and t.dose_mj_cm2:
                given.append(f"{t.dose_mj_cm2:g} mJ/cm² of light on {labels[t.area_id]}")
            elif t.modality == "needling" and t.passes:
                given.append(f"{counted(t.passes, 'needling pass', 'needling passes')} on {labels[t.area_id]}")
    return "; ".join(given) or "0 mJ/cm² of light and no needling pass"


def dose_given(rows: np.ndarray, active_channel: str) -> float:
    """The light dose (mJ/cm²) one step run gave, from its telemetry rows (fields t_host_s, dose_mj_cm2 and the
    light's `active_channel`, its open shutter: roles.py): the device's dose restarts at each START and holds its
    value until the next, so count from the first open-shutter sample of the run and include its closing samples.
    0.0 when the shutter never opened."""
    if not len(rows):
        return 0.0
    opened = np.flatnonzero(rows[active_channel].astype(bool))
    return float(rows["dose_mj_cm2"][opened[0]:].max()) if len(opened) else 0.0


# A recording that ends while it shows the shutter open (its process killed, its disk full) misses the end of that
# exposure: the samples of up to one append interval not yet written (at most 0.25 s, docs/recording-format.md),
# then the time until the light stopped (its own watchdog, TELEMETRY_LOST_S = 0.25 s after the host fell silent;
# an E-stop at once after a failed write). Such an exposure is counted with this much more at its last irradiance,
# never past its target: a dose the next plan under-counts is the hazard (the cap, the escalation), one it
# over-counts is not.
UNRECORDED_EMISSION_MAX_S = 0.5


def deliveries_from_recording(path: Path) -> list[Treatment]:
    """What each area received in a recorded session, per modality: light dose from the telemetry while the shutter
    was open in each step run (the device's dose restarts at each exposure), passes from the passes started; never
    less than the session's own count in the run's `step_ended` event (delivered_dose_mj_cm2, passes_done), which a
    file whose telemetry stopped early (a full disk) still holds. An exposure the recording shows still open at its
    end is counted with what it cannot show (UNRECORDED_EMISSION_MAX_S at its last irradiance, at most its target
    dose)."""
    from workstation.recording import Recording
    from workstation.recording.summary import finite_rows

    with Recording.open(path) as rec:
        steps = [e for e in rec.events if e.kind == "protocol" and e.details.get("event") in
                 ("step_started", "step_ended", "pass_started")]
        name = roles.recorded_of_kind(rec.devices, roles.LIGHT)
        channel = roles.recorded_active_channel(rec.devices[name]) if name is not None else None
        light = (finite_rows(rec.rows(name, 0, rec.samples(name)), (channel, "dose_mj_cm2", "t_host_s"))[0]
                 if name is not None and channel else None)
    totals: dict[tuple[int, str], Treatment] = {}
    runs: list[tuple[dict, float, float]] = []  # (details of step_started, t start, t end)
    ended: dict[int, dict] = {}  # a run's step_ended details: what the session itself counted
    open_run: dict | None = None
    t_open = 0.0
    passes: dict[int, int] = {}
    for e in steps:
        kind = e.details["event"]
        if kind == "step_started":
            if open_run is not None:
                runs.append((open_run, t_open, e.t_host_s))
            open_run, t_open = e.details, e.t_host_s
            passes[len(runs)] = 0
        elif kind == "pass_started" and open_run is not None:
            passes[len(runs)] = passes.get(len(runs), 0) + 1
        elif kind == "step_ended" and open_run is not None:
            ended[len(runs)] = e.details
            runs.append((open_run, t_open, e.t_host_s + 0.5))
            open_run = None
    if open_run is not None:
        runs.append((open_run, t_open, float("inf")))
    # the last samples of a run may arrive just after its step_ended, but never after the next run started
    runs = [(d, t0, min(t1, runs[i + 1][1]) if i + 1 < len(runs) else t1) for i, (d, t0, t1) in enumerate(runs)]
    for i, (d, t0, t1) in enumerate(runs):
        # The session's own count at the step's end, when the file has it: the telemetry may lack samples (a recorder
        # stopped by a full disk while the light ran on to its stop; a fresh tester of issue 12: 125.6 of 260 mJ/cm²
        # stored), and a cumulative dose is never taken lower than what was recorded as given.
        counted_dose = detail_number(ended.get(i, {}), "delivered_dose_mj_cm2", 0.0)
        counted_passes = detail_number(ended.get(i, {}), "passes_done", 0.0)
        key = (int(d["area_id"]), d["modality"])
        prev = totals.get(key)
        if d["modality"] == "light":
            dose = 0.0
            if light is not None and channel is not None and len(light):
                # the dose channel holds the last exposure's value until the next START: count from the first
                # open-shutter sample of this run, and include the closing samples after it
                run_rows = light[(light["t_host_s"] >= t0) & (light["t_host_s"] < t1)]
                dose = dose_given(run_rows, channel)
                if t1 == float("inf") and len(run_rows) and run_rows[channel][-1]:  # open when the recording ended
                    target = detail_number(d, "target_dose_mj_cm2", float("inf"))
                    irradiance = (float(run_rows["irradiance_mw_cm2"][-1]) if "irradiance_mw_cm2" in
                                  (run_rows.dtype.names or ()) else float("inf"))
                    if not math.isfinite(irradiance):  # unknown (absent, NaN): up to the target, the safe side
                        irradiance = float("inf")
                    unseen = irradiance * UNRECORDED_EMISSION_MAX_S  # mW/cm² × s = mJ/cm²
                    dose = max(dose, min(dose + unseen, target))
            dose = max(dose, counted_dose)
            totals[key] = Treatment(key[0], "light", dose_mj_cm2=round(dose + ((prev.dose_mj_cm2 or 0.0)
                                                                               if prev else 0.0), 3))
        else:
            done = max(passes.get(i, 0), int(counted_passes))
            totals[key] = Treatment(key[0], "needling", depth_mm=d.get("depth_mm"),
                                    stroke_rate_hz=d.get("stroke_rate_hz"),
                                    passes=done + ((prev.passes or 0) if prev else 0))
    return [t for t in totals.values() if t.dose_mj_cm2 or t.passes]


STORE_FAILED = "store_failed"  # `cause` of the alarm a session records when the store cannot take its journal


def store_failure_later(*, temporary: bool, ended: bool) -> str:
    """What becomes of a session whose store could not be written, in words (Visit._store_failed): completed from
    its recording at the next start (close_crashed_sessions); a temporary training store's session is kept in its
    recording only; one whose end was saved but not its recording's link keeps its file where it is."""
    if ended:
        return "its end is saved, but its recording could not be linked to it in the store (the file is kept here)"
    if temporary:
        return "the training store was temporary, so this session is kept in its recording only"
    return "the store is completed from its recording at the next start (free some space first)"


def recorded_end(path: Path) -> str | None:
    """How a session whose store row is still in progress ended, from its recording: the store failure its session
    recorded (Visit._store_failed: an `alarm` with cause STORE_FAILED), whether the file's close then went through
    or not (a disk that filled under both: after that alarm nothing more could be given, the monitor was held);
    else None when its recorder never closed the file (a crash, a kill, a power cut: or a file that cannot be read,
    which recover_file has said); else the recorder's own failure (its close note), else "" (it ended, and its
    program stopped before the store heard it)."""
    from workstation.recording import Recording

    try:
        with Recording.open(path) as rec:
            store = next((e.message for e in rec.events if e.kind == "alarm" and e.source == "session"
                          and e.details.get("cause") == STORE_FAILED), None)
            if store is None and rec.meta.end_time_utc is None:
                return None
            return store or rec.partial_reason or ""
    except Exception as exc:  # noqa: BLE001 - damaged: closed as a crash, as before
        log.info("recording %s not read for its end (%s)", path.name, type(exc).__name__)
        return None


def journal_recording(store, session_id: int, course_id: int, path: Path | None, *,
                      sha256: str | None = None) -> tuple[list[Treatment], bool]:
    """Fill a session's treatment rows from its recording where the recording shows more delivered than the journal
    holds (light dose in mJ/cm², needling passes); link the recording if it is not linked yet. Returns (what the
    recording showed, whether the recording could be read). Used when a session ends without its steps' own end
    (SIGINT, SIGTERM, an exception, the window closed) and when a crashed session is closed. `sha256`: the file's,
    when the caller has just computed it (else it is computed here)."""
    from workstation.checksum import sha256_of
    from workstation.errors import UserError
    from workstation.session.waiting import not_sealable

    if path is None:
        return [], True
    try:
        found = deliveries_from_recording(path)
    except Exception as exc:  # noqa: BLE001 - a damaged file: the journal's rows stand, and we say so
        log.info("recording of session %s unreadable (%s)", session_id, type(exc).__name__)
        return [], False
    journal = {(t.area_id, t.modality): t for rec in store.history(course_id) if rec.id == session_id
               for t in rec.treatments}
    for t in found:
        old = journal.get((t.area_id, t.modality))
        if t.modality == "light" and old is not None and (old.dose_mj_cm2 or 0) >= (t.dose_mj_cm2 or 0):
            continue
        if t.modality == "needling" and old is not None and (old.passes or 0) >= (t.passes or 0):
            continue
        store.journal_treatment(session_id, t)
    if path.is_file() and store.recording(session_id) is None and not not_sealable(path):
        try:
            store.link_recording(session_id, path, sha256 or sha256_of(path))
        except (OSError, UserError) as exc:
            log.info("recording of session %s not linked (%s)", session_id, type(exc).__name__)
    return found, True


def close_crashed_sessions(store) -> list[Closed]:
    """Close every 'in_progress' session whose process is gone as 'crashed', with its deliveries from its recording
    (never less than the journal already holds); a recording on this disk is also recovered (recover_file). Then
    the crashed sessions' recordings on this disk that another room closed are recovered (recover_recordings_here).
    Returns what was closed, for the caller to tell the user."""
    from workstation.recording.mark import ended_by_a_write_failure, keep_kill_trace, remove_kill_trace
    from workstation.recording.share import sync_command
    from workstation.session.waiting import JOURNAL_ONLY, held_words, missing_words, rooms_here

    closed = []
    for row in store.in_progress_sessions():
        live = store.live_lease(row["course_id"])
        if process_alive(row["process"]) or (live is not None and live.process == row["process"]):
            continue  # running here, or in another room under its course's lease (issue 17)
        sid = row["id"]
        why, state = "interrupted by a crash", "crashed"
        path = Path(row["recording_path"]) if row["recording_path"] else None
        recorder_failed = ended_by_a_write_failure(path)  # before recover_file changes what a crash left
        if not recorder_failed:
            keep_kill_trace(path)  # until the store holds the verdict: a restart stopped before that reads it too
        found, readable = recover_file(store, sid, row["course_id"], path)
        ended = recorded_end(path) if readable and path is not None and path.is_file() else None
        if ended is None and readable and recorder_failed:  # not a crash: its recorder failed, the file says no more
            ended = WRITE_FAILED
        if ended is not None:  # not a crash: its program ended it and closed its recording; the store missed the end
            why, state = ("aborted: " + (f"{ended.rstrip('.')}; " if ended else "")
                          + "its doses were taken from its recording at the next start"), "aborted"
        elif path is None:  # killed before its recorder opened (a racing start, a crash at the start)
            why += ("; it had no recording (the program stopped before its recorder opened), so it is closed with "
                    f"the doses the journal shows: {journal_doses(store, sid, row['course_id'])}")
        elif not path.is_file():
            room = store.session_state(sid).get("room")
            why += (f"; its recording {missing_words(path)}. Until then " + JOURNAL_ONLY.format(where=" here")
                    if room in rooms_here(store) else
                    f"; its recording is still on {room or 'another workstation'}'s disk, not yet copied: that "
                    "workstation recovers it (checksum, signature, index, share) at its next start or with "
                    f"`{sync_command()}`, and the doses it shows are counted then. Until then "
                    + JOURNAL_ONLY.format(where=" here"))
        elif held := held_words(path):
            why += f"; its recording is {held}" + ("" if readable else "; until then " + JOURNAL_ONLY.format(where=""))
        elif not readable:
            why += "; its recording could not be read here (damaged or cut short), so " + JOURNAL_ONLY.format(where="")
        store.close_session(sid, state, why)
        remove_kill_trace(path)
        closed.append(Closed(sid, found, why, from_recording=path is not None and path.is_file() and readable,
                             label=store.session_label(sid), ended_unsaved=ended is not None, store_role=store.role))
    recover_recordings_here(store)
    return closed


def seal_recovered(path: Path) -> str:
    """The .sha256 and .sig a killed recorder never wrote, for the recording at `path` (its open mark cleared
    first): written as the recorder writes them at close. Sidecars already there that verify (the recorder closed
    the file, the process died after) are kept. Returns the file's SHA-256; OSError if they cannot be written."""
    from workstation.checksum import write_checksum
    from workstation.recording import room
    from workstation.recording.format import ballast_path, checksum_path, signature_path
    from workstation.recording.signature import sign
    from workstation.recording.summary import check_checksum

    if checksum_path(path).is_file() and signature_path(path).is_file():
        check = check_checksum(path)
        if check.intact:
            return checksum_path(path).read_text(encoding="ascii", errors="replace").split()[0].lower()
    room.give_back(path)  # the room the killed recorder held past the file's end; the file's bytes are not touched
    sha = write_checksum(path, checksum_path(path), room=ballast_path(path))  # its ballast, written over, if left
    sign(path, sha)
    return sha


def recover_file(store, session_id: int, course_id: int, path: Path | None) -> tuple[list[Treatment], bool]:
    """A crashed session's recording on this disk made whole: its open mark cleared, what it shows journalled
    (journal_recording), its .sha256 and .sig written (seal_recovered), indexed and linked to the session, queued
    for the clinic's share, its ballast removed. Returns (what it showed, whether it could be read). A file that is
    not here (another room's disk) or cannot be read is left as it is; one whose mark could not be cleared (another
    program holds it: mark.still_marked) is journalled, but left unsealed and unindexed until recover_recordings_here
    finds it free."""
    from workstation.recording.mark import remove_ballast
    from workstation.recording.share import recording_saved
    from workstation.session.waiting import not_sealable

    clear_crash_mark(path)  # before its SHA-256 is taken: clearing changes bytes
    sha = None
    if path is not None and path.is_file():
        try:
            from workstation.recording import Recording

            with Recording.open(path):
                pass
            if not not_sealable(path):  # else left unsealed for the next start or `recording sync` (waiting.py)
                sha = seal_recovered(path)
        except Exception as exc:  # noqa: BLE001 - damaged: not signed as if it were whole; the journal stands
            log.info("recording of session %s not sealed (%s)", session_id, type(exc).__name__)
    found, readable = journal_recording(store, session_id, course_id, path, sha256=sha)
    remove_ballast(path)
    if readable and sha is not None and store.recording(session_id) is not None:
        recording_saved(store, session_id)
    return found, readable


def recover_recordings_here(store) -> list[Closed]:
    """Recover every crashed session's recording that is on this disk and not indexed yet: the session was closed
    elsewhere (another room's crash recovery, which cannot read this disk) or before its file could be read. Each is
    recovered as recover_file does, and its outcome note says so. Run at each start (close_crashed_sessions) and by
    the share's copier (`recording sync`, the window's copies). Returns what was recovered."""
    from workstation.recording.mark import remove_kill_trace

    recovered = []
    for row in store.crashed_unindexed():
        path = Path(row["recording_path"])
        if not path.is_file():
            continue  # another room's: it recovers it
        found, readable = recover_file(store, row["id"], row["course_id"], path)
        remove_kill_trace(path)  # its session is closed already
        if not readable or store.recording(row["id"]) is None:
            continue
        sentence = (f"its recording was recovered on {store.workstation} (checksum, signature, index), and the "
                    "doses it shows are counted")
        store.add_outcome_note(row["id"], sentence)
        log.info("recording of crashed session %s recovered on this workstation", row["id"])
        recovered.append(Closed(row["id"], found, sentence, label=store.session_label(row["id"])))
    return recovered


def clear_crash_mark(path: Path | None) -> bool:
    """Clear the "open for writing" mark a killed recorder left in its recording (workstation.recording.mark), so
    h5dump, HDFView and MATLAB open it; left as it is (and logged) if a process holds the file or it is damaged."""
    from workstation.recording.errors import RecordingError
    from workstation.recording.mark import clear_open_mark

    if path is None or not path.is_file():
        return False
    try:
        return clear_open_mark(path)
    except (RecordingError, OSError) as exc:
        log.info("open-for-writing mark of %s not cleared (%s)", path.name, exc)
        return False


WRITE_FAILED = ("its recording stopped on a write failure, most often a full disk, before the session's end could be "
                "written to the file or to the store")
