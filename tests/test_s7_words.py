"""The seventh session's words: every session state is said in words wherever an event is shown (the replay's event
list showed "Session connected → plan_loaded"), and a training store's failure names the training store."""

from __future__ import annotations

import re

from workstation.bus import Event
from workstation.session.steps import ALLOWED_TRANSITIONS, State
from workstation.ui.wording import STATE_WORDS, event_sentence, scrub, state_words


def test_every_session_state_has_its_words() -> None:
    assert set(STATE_WORDS) == {s.value for s in State}
    assert state_words("some_new_state") == "some new state"  # a state added later is never shown as an identifier


def test_every_transition_is_said_without_an_identifier() -> None:
    for a, targets in ALLOWED_TRANSITIONS.items():
        for b in targets:
            said = event_sentence(Event(1.0, "state", "info", "session", f"session {a} → {b}",
                                        {"from": a.value, "to": b.value}))
            assert said == f"Session {state_words(a)} → {state_words(b)}.", said
            assert not re.search(r"\w_\w", said), said
            assert scrub(f"session {a} → {b}") == f"Session {state_words(a)} → {state_words(b)}"
