"""A scenario file's texts never reach a terminal or the window raw (fresh tester of issue 12).

Titles, descriptions, the pseudonym, the protocol id, the operator and the area labels of a trainer's scenario file
are cleaned when the file is read, by the one cleaner of a device's words (`drivers.protocol.clean_text`): ESC, NUL,
BEL and every other control character become spaces; a text made only of them is an error in words.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.protocol import clean_text
from workstation.session.scenario import ScenarioError, load_scenario

ROOT = Path(__file__).resolve().parents[1]
BASE = (ROOT / "seeds" / "scenarios" / "combined-uneventful.toml").read_text()
FIELDS = {  # the texts of the base file, each replaced in turn
    "title": 'title = "Hypopigmented atrophic scar, skin type III: combined visit, no incident"',
    "description": 'description = "The trainee watches the plan run: a dose-controlled exposure, then two needling '
                   'passes."',
    "operator": 'operator = "trainee-01"',
    "pseudonym": 'pseudonym = "TRAIN-0001"',
    "area": 'id = "left-cheek"',
}
ESC_TEXT = "dr-\x1b[31mred\x1b[0m\x00\x07\x08\r\n\x9b2J\u2028x"


def _toml_string(value: str) -> str:
    """A TOML basic string holding exactly `value` (every character escaped)."""
    return '"' + "".join(f"\\U{ord(ch):08X}" for ch in value) + '"'


def _with(tmp_path: Path, field: str, value: str) -> Path:
    key = FIELDS[field].split(" = ")[0]
    path = tmp_path / f"s-{field}.toml"
    text = BASE.replace(FIELDS[field], f"{key} = {_toml_string(value)}")
    assert text != BASE
    path.write_text(text)
    return path


def _texts(s) -> list[str]:
    return [s.title, s.description, s.pseudonym, s.protocol_id, s.operator_id, *(a.area_id for a in s.areas)]


def _raw(text: str) -> bool:
    return any(ord(ch) < 32 or 127 <= ord(ch) < 160 or ch in "\u2028\u2029" for ch in text)


def test_clean_text_is_the_device_words_cleaner():
    assert clean_text("a\x1bb\x00c\x07") == "a b c" and clean_text("\udc80x") == "?x"


@pytest.mark.parametrize("field", sorted(FIELDS))
def test_control_characters_in_any_text_of_a_scenario_are_cleaned(tmp_path, field):
    refused = {"pseudonym": "patient.pseudonym: 'dr- [31mred [0m 2J x' is not a pseudonym",  # the store's rule
               "operator": "session.operator: 'dr- [31mred [0m 2J x' is not an account name"}  # seventh session
    if field in refused:  # cleaned, then refused by the store's rule, in words and clean
        with pytest.raises(ScenarioError) as err:
            load_scenario(_with(tmp_path, field, ESC_TEXT))
        assert refused[field] in str(err.value)
        assert not _raw(str(err.value))
        return
    s = load_scenario(_with(tmp_path, field, ESC_TEXT))
    assert not [t for t in _texts(s) if _raw(t)]
    got = {"title": s.title, "description": s.description, "operator": s.operator_id, "pseudonym": s.pseudonym,
           "area": s.areas[0].area_id}[field]
    assert got == "dr- [31mred [0m 2J x"


def test_a_text_of_only_control_characters_is_an_error_in_words(tmp_path):
    with pytest.raises(ScenarioError) as err:
        load_scenario(_with(tmp_path, "operator", "\x1b\x00\x07"))
    assert "session.operator: holds only control characters" in str(err.value)
    assert not _raw(str(err.value).replace("\n", " "))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40),
       field=st.sampled_from(sorted(FIELDS)))
def test_any_text_loads_clean_or_is_refused_in_words(tmp_path, value, field):
    try:
        s = load_scenario(_with(tmp_path, field, value))
    except ScenarioError as exc:
        assert not _raw(str(exc).replace("\n", " ")), str(exc)
        return
    assert not [t for t in _texts(s) if _raw(t)], _texts(s)


def test_the_headless_runner_prints_no_raw_control_character(tmp_path):
    """`main.py session` prints the scenario's title and its operator's words: never an ESC or a NUL."""
    path = tmp_path / "s.toml"
    text = BASE.replace(FIELDS["title"], f"title = {_toml_string('Title ' + ESC_TEXT)}")
    text = text.replace(FIELDS["description"], f"description = {_toml_string(ESC_TEXT)}")
    path.write_text(text)
    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), "session", "--simulate", "--scenario", str(path),
                           "--record", str(tmp_path / "rec")], capture_output=True, timeout=180, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert b"scenario: Title dr- [31mred" in out, out.decode(errors="replace")
    assert not [b for b in out if b < 32 and b not in (9, 10)], out
    # the session's own outcome is not this test's subject (a loaded machine may trip it): no crash, no "bad input"
    assert proc.returncode in (0, 3), out.decode(errors="replace")


def test_the_window_shows_the_scenarios_area_cleaned_and_refuses_an_operator_that_is_no_account(qtbot, window,
                                                                                                  tmp_path):
    from test_ui_session import TIMEOUT_MS

    window.choose_simulation(_with(tmp_path, "operator", ESC_TEXT))  # who ran it is recorded: an account name only
    qtbot.waitUntil(lambda: "is not an account name" in (window.messages[-1][1] if window.messages else ""),
                    timeout=TIMEOUT_MS)
    assert not _raw(window.messages[-1][1]) and window.pages.currentWidget() is not window.plan_view
    window.choose_simulation(_with(tmp_path, "area", ESC_TEXT))
    qtbot.waitUntil(lambda: window.pages.currentWidget() is window.plan_view, timeout=TIMEOUT_MS)
    assert window.controller.operator == "trainee-01"
