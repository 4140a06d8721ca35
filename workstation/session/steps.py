"""The session's vocabulary, without its machinery: its states and the transitions allowed between them, a plan step
(built from the dose engine's plan) and the result of one run of a step. `workstation/session/session.py` runs them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from workstation.words import counted


class State(StrEnum):
    IDLE = "idle"
    CONNECTED = "connected"
    PLAN_LOADED = "plan_loaded"
    ARMED = "armed"
    TREATING = "treating"
    PAUSED = "paused"
    COMPLETED = "completed"
    ABORTED = "aborted"


ALLOWED_TRANSITIONS = {
    State.IDLE: {State.CONNECTED, State.ABORTED},
    State.CONNECTED: {State.PLAN_LOADED, State.ABORTED},
    State.PLAN_LOADED: {State.ARMED, State.PLAN_LOADED, State.ABORTED},
    State.ARMED: {State.TREATING, State.PAUSED, State.COMPLETED, State.ABORTED},
    State.TREATING: {State.ARMED, State.PAUSED, State.COMPLETED, State.ABORTED},
    State.PAUSED: {State.ARMED, State.ABORTED, State.COMPLETED},
    State.COMPLETED: set(),
    State.ABORTED: set(),
}


class SessionError(Exception):
    """An operation the session cannot do in its current state; the message says why and what to do."""


class StepRefused(SessionError):
    """A step refused before anything was sent to a device: the session was not armed, an interlock was latched, a
    cause no reset clears was held, or the light's dose sensor was in doubt. Another thread can bring any of these
    between a loop's look at the state and the start; the headless loop ends on it (Session.run_steps), the window
    shows its words."""


@dataclass(frozen=True, slots=True)
class Step:
    """One thing to do on one area: a light exposure or needling passes. Built from the dose engine's plan."""

    area_id: str
    area_label: str
    modality: str  # "light" or "needling"
    target_dose_mj_cm2: float = 0.0
    area_dose_cap_mj_cm2: float = math.inf
    depth_mm: float = 0.0
    depth_limit_mm: float = 0.0
    stroke_rate_hz: float = 0.0
    passes: int = 0
    pass_duration_s: float = 0.0  # headless/simulated needling: how long the pen runs per pass

    def describe(self) -> str:
        if self.modality == "light":
            return f"light on {self.area_label}: {self.target_dose_mj_cm2:g} mJ/cm²"
        return (f"needling on {self.area_label}: {self.depth_mm:g} mm, {self.stroke_rate_hz:g} Hz, "
                + counted(self.passes, 'pass', 'passes'))


@dataclass
class StepResult:
    """One run of a step. A step stopped and run again after a resume has several runs; together they deliver the
    step's target once (the later runs give only what is left)."""

    step: Step
    outcome: str  # "done", "interrupted", "skipped"
    delivered_dose_mj_cm2: float = 0.0
    passes_done: int = 0
    t_start_s: float = 0.0
    t_end_s: float = 0.0
    note: str = ""
    step_index: int = -1
