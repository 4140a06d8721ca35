"""The dose engine: proposes each session's plan per area and explains every number (pure logic, no Qt, no I/O)."""

from workstation.dose.engine import plan_session
from workstation.dose.from_store import plan_next_session
from workstation.dose.override import override
from workstation.dose.plan import (
    ENGINE_VERSION,
    OVERRIDABLE,
    AreaPlan,
    Bounds,
    Override,
    Refusal,
    SessionPlan,
    Step,
)

__all__ = [
    "ENGINE_VERSION", "OVERRIDABLE", "AreaPlan", "Bounds", "Override", "Refusal", "SessionPlan", "Step", "override",
    "plan_next_session", "plan_session",
]
