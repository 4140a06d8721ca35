"""What a session delivered, step by step: the runs of a step (a step stopped and run again after a resume has
several) merged into one line each, and the session's honest outcome word."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from drivers.codes import AbortCause

EXIT_CODES = {
    AbortCause.NONE: 0,
    AbortCause.BAD_INPUT: 2,
    AbortCause.INTERLOCK: 3,
    AbortCause.RECORDING: 3,  # the recorder is an interlock too: the devices were stopped because of it
    AbortCause.STORE: 3,  # so is the store's journal
    AbortCause.OPERATOR: 4,
    AbortCause.DEVICE: 5,
}
"""The headless runner's exit status for each cause a session ended by (the README lists them)."""


def delivered_by_runs(results: Sequence[Any], index: int) -> tuple[float, int]:
    """(dose mJ/cm², passes started) of the step at `index` over all its runs (StepResults)."""
    runs = [r for r in results if r.step_index == index]
    return sum(r.delivered_dose_mj_cm2 for r in runs), sum(r.passes_done for r in runs)


def merge_runs(steps: Sequence[Any], results: Sequence[Any]) -> list[dict]:
    """One entry per step that ran: outcome (done if a run finished it, else the last run's), the total delivered
    (mJ/cm², passes), the number of runs, the last note; depth and stroke rate for needling only."""
    out = []
    for index, step in enumerate(steps):
        runs = [r for r in results if r.step_index == index]
        if not runs:
            continue
        dose, passes = delivered_by_runs(results, index)
        done = any(r.outcome == "done" for r in runs)
        entry = {"area": step.area_id, "modality": step.modality, "step_index": index,
                 "outcome": "done" if done else runs[-1].outcome, "runs": len(runs),
                 "delivered_dose_mj_cm2": round(dose, 2), "passes_done": passes,
                 "note": next((r.note for r in reversed(runs) if r.note), "")}
        if step.modality == "needling":
            entry["depth_mm"] = step.depth_mm
            entry["stroke_rate_hz"] = step.stroke_rate_hz
        out.append(entry)
    return out


def session_outcome(steps: Sequence[Any], merged: Sequence[dict]) -> str:
    """completed (every step done), partial (something delivered, not everything) or aborted (nothing delivered)."""
    if steps and sum(o["outcome"] == "done" for o in merged) == len(steps):
        return "completed"
    if any(delivered_something(o["delivered_dose_mj_cm2"], o["passes_done"]) for o in merged):
        return "partial"
    return "aborted"


def delivered_something(dose_mj_cm2: float, passes: int) -> bool:
    """Whether a step gave anything (some UV dose or a needling pass started): what tells a partial session from an
    aborted one, here and in the report (workstation.ui.report_data.ReportData.outcome)."""
    return dose_mj_cm2 > 0 or passes > 0


def started_modalities(steps: Iterable[tuple[str, str]]) -> set[str]:
    """The modalities of the steps that started, from (modality, outcome) pairs: every outcome but "skipped" (a
    step stopped part-way may have given some). What the aftercare follows (workstation.dose.plan.aftercare_for)."""
    return {modality for modality, outcome in steps if outcome != "skipped"}


def summarize(session: Any) -> dict:
    """The session's summary as printed, shown in the window and put in the report."""
    steps = session.step_outcomes()
    return {
        "state": session.outcome(),
        "session_state": str(session.state),
        "abort_reason": session.abort_reason,
        "abort_cause": str(session.abort_cause),
        "steps_planned": len(session.steps),
        "steps_done": sum(o["outcome"] == "done" for o in steps),
        "area_dose_mj_cm2": {k: round(v, 2) for k, v in session.area_dose_mj_cm2.items()},
        "trips": trip_rows(session.monitor.trips),
        "results": steps,
    }


def not_started_summary(reason: str, cause: Any, trips: Iterable[Any], steps_planned: int,
                        recorded: frozenset | None = None) -> dict:
    """`summarize`'s dict, every key, for a treatment that could not start (nothing given): aborted with `reason`,
    the trips the monitor made while it tried (a load trip while connecting shows there, as at any end), each said
    in the recording or not (`recorded`: trip_rows)."""
    return {"state": "aborted", "session_state": "aborted", "abort_reason": reason, "abort_cause": str(cause),
            "steps_planned": steps_planned, "steps_done": 0, "area_dose_mj_cm2": {},
            "trips": trip_rows(trips, recorded), "results": []}


NOT_RECORDED = " (not in the recording: it came before the recording began or after it closed; the log file has it)"


def trip_key(details: dict) -> tuple:
    """What ties a trip to its interlock event: (device, interlock, the host time its stop was written, s), from the
    event's details (`SafetyMonitor._trip`)."""
    return (str(details.get("device")), str(details.get("interlock")), details.get("stop_written_t_host_s"))


def trip_rows(trips: Iterable[Any], recorded: frozenset | None = None) -> list[dict]:
    """The summary's "trips": one dict per safety-monitor trip (interlock, device, message, latency_ms,
    stop_written, stop, in_recording), in the order they were made. `in_recording`: whether the closed file holds
    its event (`recorded`: the trip_keys read back from it), None when that is not known."""
    return [{"interlock": t.interlock, "device": t.device, "message": t.message,
             "latency_ms": round(t.latency_ms, 3), "stop_written": stop_written(t.details),
             "stop": str(t.details.get("stop", "stop written")),
             "in_recording": None if recorded is None else trip_key(
                 {"device": t.device, "interlock": t.interlock, "stop_written_t_host_s": t.t_stop_written_s})
             in recorded} for t in trips]


def stop_written(details: dict) -> bool:
    """Whether the safety monitor's stop reached the device's link (its trip's or interlock event's "stop" detail):
    False when the link was gone (the device's own watchdog stops it then)."""
    return not str(details.get("stop", "stop written")).startswith("stop not written")


def trip_stop_words(latency_ms: float, stop: str = "stop written") -> str:
    """How the stop went, in words for the summary and the report: the latency is from the cause to the stop being
    written to the link, not to the device stopping (the recording's telemetry review tells that)."""
    after = f"{latency_ms:.2f} ms after the cause" if math.isfinite(latency_ms) else "(its time is not recorded)"
    if stop_written({"stop": stop}):
        return f"stop sent {after}"
    why = ("no such device is connected" if "no such device" in stop
           else "disconnected" if "not connected" in stop or "disconnect" in stop else "the link failed")
    decided = f"decided in {latency_ms:.2f} ms; " if math.isfinite(latency_ms) else ""
    return f"{decided}the stop could not be sent ({why}): the device's own watchdog stops it"
