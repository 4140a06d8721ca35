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


def test_a_scenario_operator_is_an_account_name_or_refused_in_words(tmp_path) -> None:
    """A tester gave `operator = "dr-a (administrator)"`: it was recorded as who ran the session. Now the store's
    account rule (store.operators.ACCOUNT) is the scenario's, said with the file and the key."""
    from pathlib import Path

    import pytest

    from workstation.session.scenario import ScenarioError, load_scenario

    base = (Path(__file__).resolve().parents[1] / "seeds" / "scenarios" / "combined-uneventful.toml").read_text()
    for operator in ("dr-a (administrator)", "Dr A", "root\\u202eevil", "a", "x" * 33, "-dash", "trainee 01"):
        path = tmp_path / "s.toml"
        path.write_text(base.replace('operator = "trainee-01"', f'operator = "{operator}"'))
        with pytest.raises(ScenarioError) as err:
            load_scenario(path)
        assert f"{path}" in str(err.value) and "session.operator" in str(err.value), str(err.value)
        assert "is not an account name: 2–32 lower-case letters" in str(err.value), str(err.value)
    for operator in ("trainee-01", "dr.a", "t_1"):
        path.write_text(base.replace('operator = "trainee-01"', f'operator = "{operator}"'))
        assert load_scenario(path).operator_id == operator


def test_every_store_sentence_names_the_store_it_is_about(tmp_path) -> None:
    """A training store's refusals said "The clinic store …" (a tester, seventh session): opening, a write that
    fails, a store another program holds: each names the training store as such, the clinic store as before."""
    import sqlite3

    import pytest

    from workstation.errors import UserError
    from workstation.store import ClinicStore
    from workstation.store.connection import write_failure

    folder = tmp_path / "a folder"
    folder.mkdir()
    for training, role in ((True, "training"), (False, "clinic")):
        with pytest.raises(UserError) as err:
            ClinicStore.open(folder, training=training)
        assert str(err.value).startswith(f"The {role} store {folder} cannot be opened: it is a folder"), str(err.value)
        full = write_failure(tmp_path / "s.sqlite3", sqlite3.OperationalError("database or disk is full"), role)
        busy = write_failure(tmp_path / "s.sqlite3", sqlite3.OperationalError("database is locked"), role)
        assert str(full).startswith(f"The {role} store {tmp_path / 's.sqlite3'} could not be written: its disk is full")
        assert str(busy).startswith(f"The {role} store {tmp_path / 's.sqlite3'} is in use by another program")
