"""A fresh tester's file inputs (issue 11 follow-up): bytes that are not UTF-8 and a BOM, integer ranges on every
integer key, "known keys here" listing every allowed key, NaN/inf/empty/too-precise messages, cross-field checks in
the factory tables, clinic course bounds, a folder given as a scenario."""

from __future__ import annotations

import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from main import main
from workstation.protocols import load_library, seeds_dir
from workstation.protocols.reader import Reader, fmt, read_toml
from workstation.session.scenario import ScenarioError, load_scenario

LIGHT = seeds_dir() / "protocols" / "hypopigmented-scar-light.toml"
SCENARIO = seeds_dir() / "scenarios" / "combined-uneventful.toml"


def _clinic(tmp_path, old, new, base=LIGHT):
    text = base.read_text()
    assert old in text, old
    text = text.replace(old, new, 1).replace('id = "', 'id = "clinic-', 1)
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path, [e for e in load_library([tmp_path]).errors if e.path == path]


# ---- 7: not UTF-8, BOM, a folder ------------------------------------------------------------------------------------
@pytest.mark.parametrize("junk", [b"\xff\xfe bad", b'id = "x"\n\xc3\x28\n', b"\x80"])
def test_a_file_that_is_not_utf8_is_named_in_a_sentence(tmp_path, capsys, junk):
    (tmp_path / "bad.toml").write_bytes(junk)
    assert main(["protocols", "check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"{tmp_path / 'bad.toml'}: is not UTF-8 text" in out and "internal error" not in out


def test_a_non_utf8_scenario_is_bad_input_exit_2(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_bytes(b"\xff\xfe bad")
    with pytest.raises(ScenarioError, match="is not UTF-8 text"):
        load_scenario(path)
    assert main(["session", "--simulate", "--scenario", str(path), "--store", str(tmp_path / "s.db")]) == 2


def test_a_utf8_bom_is_accepted(tmp_path):
    path = tmp_path / "c.toml"
    path.write_bytes(b"\xef\xbb\xbf" + LIGHT.read_bytes().replace(b'id = "', b'id = "clinic-', 1))
    lib = load_library([tmp_path])
    assert not [e for e in lib.errors if e.path == path] and "clinic-hypopigmented-scar-light" in lib.protocols
    scenario = tmp_path / "s.toml"
    scenario.write_bytes(b"\xef\xbb\xbf" + SCENARIO.read_bytes())
    assert load_scenario(scenario).areas


def test_a_folder_as_scenario_says_so(tmp_path, capsys):
    with pytest.raises(ScenarioError, match="is a folder, not a scenario file"):
        load_scenario(tmp_path)
    data, err = read_toml(tmp_path)
    assert data is None and "is a folder" in err.message


# ---- 8: every integer key has a range ------------------------------------------------------------------------------
@pytest.mark.parametrize("old,new,key", [
    ("version = 1", "version = 99999999999999999999", "version"),
    ("version = 1", "version = 9223372036854775807", "version"),
    ("sessions_max = 20", "sessions_max = 100000000", "course.sessions_max"),
    ("min_interval_days = 2", "min_interval_days = 99999999999999", "light.min_interval_days"),
])
def test_huge_integers_are_refused_with_the_range(tmp_path, old, new, key):
    path, errs = _clinic(tmp_path, old, new)
    assert any(e.key == key and "outside the allowed range" in e.message and " and " in e.message for e in errs), \
        [str(e) for e in errs]


def test_the_reader_has_no_integer_key_without_an_upper_bound():
    with pytest.raises(TypeError):
        Reader(LIGHT, {}).integer("x", 1)  # the signature requires hi


# ---- 9: known keys here: the full allowed set ----------------------------------------------------------------------
def test_a_typo_in_patient_lists_every_allowed_key(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(SCENARIO.read_text().replace("skin_type = 3", "skin_type = 3\npih_histroy = true"))
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    msg = str(exc.value)
    assert "patient.pih_histroy: is not a known key here" in msg
    for key in ("med_mj_cm2", "pih_history", "pseudonym", "skin_type"):
        assert key in msg.split("patient.pih_histroy")[1].split("\n")[0], msg


def test_a_typo_in_a_region_lists_every_allowed_key(tmp_path):
    shutil.copytree(seeds_dir(), tmp_path / "seeds")
    path = tmp_path / "seeds" / "tables" / "regions.toml"
    text = path.read_text()
    new = text.replace("face = {", "face = { fcae = true,", 1)
    assert new != text
    path.write_text(new)
    lib = load_library(seeds=tmp_path / "seeds")
    msgs = [e.message for e in lib.errors if e.path == path and e.key.endswith("fcae")]
    assert msgs and all(k in msgs[0] for k in ("depth_class", "face", "needling")), [str(e) for e in lib.errors]


# ---- 10: messages for NaN, inf, empty text, near-bound values ------------------------------------------------------
@pytest.mark.parametrize("old,new,key,words", [
    ("escalation_percent = 10", "escalation_percent = nan", "light.escalation_percent",
     "is nan, not a finite number; give a number between 5 and 20"),
    ("min_interval_days = 2", "min_interval_days = 1e400", "light.min_interval_days",
     "is inf, not a finite number; give a whole number between 1 and 3650"),
    ('title = "', 'title = ""\nx_title = "', "title", "is empty; give some text"),
    ("sessions_max = 20", "sessions_max = 2.5", "course.sessions_max",
     "must be a whole number between 1 and 1000, not a decimal number (2.5)"),
])
def test_messages_say_what_is_wrong_and_the_range(tmp_path, old, new, key, words):
    path, errs = _clinic(tmp_path, old, new)
    assert any(e.key == key and words in e.message for e in errs), [str(e) for e in errs]
    assert not any("not a number (" in e.message or "not text." in e.message for e in errs)


def test_a_value_just_above_the_bound_shows_enough_digits(tmp_path):
    text = (seeds_dir() / "protocols" / "striae-alba-light.toml").read_text()
    path, errs = _clinic(tmp_path, "med_fraction = 0.5", "med_fraction = 0.7000001",
                         base=seeds_dir() / "protocols" / "striae-alba-light.toml")
    assert text
    assert any("is 0.7000001, outside the allowed range: it must be a number between 0.5 and 0.7" in e.message
               for e in errs), [str(e) for e in errs]


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.integers(-10**20, 10**20), st.floats(allow_nan=False, allow_infinity=False)))
def test_fmt_never_hides_a_difference(v):
    assert float(fmt(v)) == float(v)


# ---- 15: cross-field checks in the factory tables ------------------------------------------------------------------
@pytest.mark.parametrize("table,old,new,key,words", [
    ("light_dosing", "{ from_days = 8, to_days = 14,", "{ from_days = 8, to_days = 4,", "missed.rules[1].to_days",
     "must not be below from_days"),
    ("light_dosing", "{ from_days = 15, to_days = 21,", "{ from_days = 5, to_days = 21,", "missed.rules[2].from_days",
     "must be in order and not overlap"),
    ("light_dosing", 'action = "reduce", reduce_percent = 50', 'action = "keep"', "missed.rules[2].action",
     "never gets a gentler rule"),
    ("light_dosing", "area_warn_mj_cm2 = 15000", "area_warn_mj_cm2 = 25000", "cumulative.area_warn_mj_cm2",
     "a warning must come before the cap"),
    ("light_dosing", "plausible_min_mj_cm2 = 130", "plausible_min_mj_cm2 = 131", "med.plausible_min_mj_cm2",
     "lowest skin-type start"),
    ("needling", "passes_max = 2\n", "passes_max = 99\n", "pen.passes_max", "between 1 and 20"),
    ("needling", "stroke_rate_min_hz = 50\nstroke_rate_max_hz = 150", "stroke_rate_min_hz = 140\nstroke_rate_max_hz = 100",
     "pen.stroke_rate_min_hz", "must not exceed stroke_rate_max_hz"),
    ("needling", "face = { min_mm = 1.0, max_mm = 1.5 }", "face = { min_mm = 1.6, max_mm = 1.5 }", "depth.face",
     "ordered range"),
])
def test_the_tables_check_their_numbers_against_each_other(tmp_path, table, old, new, key, words):
    shutil.copytree(seeds_dir(), tmp_path / "seeds")
    path = tmp_path / "seeds" / "tables" / f"{table}.toml"
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))
    lib = load_library(seeds=tmp_path / "seeds")
    if key is None:
        assert lib.tables is not None and not lib.errors
        return
    assert lib.tables is None
    assert any(e.path == path and e.key == key and words in e.message for e in lib.errors), [str(e) for e in lib.errors]


# ---- 16: a clinic course is bounded by the tables ------------------------------------------------------------------
@pytest.mark.parametrize("old,new,key,words", [
    ("sessions_max = 20", "sessions_max = 1000", "course.sessions_max", "at most 30 sessions"),
    ("interval_min_days = 2", "interval_min_days = 1", "course.interval_min_days",
     "is 1 day; the factory tables require at least 2 days"),
])
def test_clinic_course_rules_are_bounded_by_the_tables(tmp_path, old, new, key, words):
    path, errs = _clinic(tmp_path, old, new)
    assert any(e.key == key and words in e.message for e in errs), [str(e) for e in errs]


def test_a_scenario_seed_limit_is_shown_in_full(tmp_path):
    path = tmp_path / "s.toml"
    text = SCENARIO.read_text()
    assert "seed = " in text
    path.write_text("\n".join("seed = 99999999999" if line.startswith("seed = ") else line
                              for line in text.splitlines()))
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    assert "between 0 and 2147483647" in str(exc.value) and "e+09" not in str(exc.value)
