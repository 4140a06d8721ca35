"""Issue 11 item 2: the factory tables bound every clinic file. `protocols check` names the file, the key and both
values; the engine never plans above the tables even where a file slipped through."""

from __future__ import annotations

from datetime import date

import pytest

from main import main
from workstation.dose import plan_session
from workstation.protocols import load_library, seeds_dir
from workstation.store import Area, Course, ScreeningAnswer

LIGHT = seeds_dir() / "protocols" / "hypopigmented-scar-light.toml"
STRIAE = seeds_dir() / "protocols" / "striae-alba-light.toml"


def _clinic_fixed(tmp_path, start="2000", cap="1e8"):
    text = LIGHT.read_text().replace('id = "hypopigmented-scar-light"', 'id = "clinic-fixed-start"')
    text = text.replace('start_method = "med_minus"\nmed_minus_mj_cm2 = 50', f'start_method = "fixed"\n'
                        f'fixed_start_mj_cm2 = {start}')
    text = text.replace('med_minus_mj_cm2 = "alexiades-2004"', 'fixed_start_mj_cm2 = "alexiades-2004"')
    text = text.replace("cumulative_cap_mj_cm2 = 20000", f"cumulative_cap_mj_cm2 = {cap}")
    path = tmp_path / "fixed.toml"
    path.write_text(text)
    return path


def test_issue_clinic_file_start_2000_and_cap_1e8_fails_check_naming_file_key_and_both_values(tmp_path, capsys):
    path = _clinic_fixed(tmp_path)
    assert main(["protocols", "check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}: light.fixed_start_mj_cm2: is 2000 mJ/cm²; the factory tables start no skin type above 400" in out
    assert f"{path}: light.cumulative_cap_mj_cm2: is 1e+08 mJ/cm²; the factory tables allow at most 20000" in out
    assert "clinic-fixed-start" not in load_library([tmp_path]).protocols


@pytest.mark.parametrize("base,old,new,key,words", [
    (LIGHT, "cumulative_cap_mj_cm2 = 20000", "cumulative_cap_mj_cm2 = 20001", "light.cumulative_cap_mj_cm2",
     "is 20001 mJ/cm²; the factory tables allow at most 20000"),
    (LIGHT, "med_minus_mj_cm2 = 50", "med_minus_mj_cm2 = 10", "light.med_minus_mj_cm2",
     "is 10 mJ/cm²; the factory tables start at least 50 mJ/cm² below the MED"),
    (STRIAE, "med_fraction = 0.5", "med_fraction = 0.7", None, None),  # at the bound: allowed
])
def test_clinic_copies_looser_than_the_tables_are_refused(tmp_path, base, old, new, key, words):
    text = base.read_text()
    assert old in text
    text = text.replace(old, new).replace('id = "', 'id = "clinic-', 1)
    (tmp_path / "c.toml").write_text(text)
    lib = load_library([tmp_path])
    mine = [e for e in lib.errors if e.path == tmp_path / "c.toml"]
    if key is None:
        assert not mine and len(lib.protocols) == 6
    else:
        assert any(e.key == key and words in e.message for e in mine), [str(e) for e in mine]


def test_a_fixed_start_within_the_bound_is_capped_at_the_table_start_for_the_skin_type(tmp_path):
    _clinic_fixed(tmp_path, start="280", cap="15000")  # the uniform 280 consensus start (CLINICAL.md)
    lib = load_library([tmp_path])
    assert not lib.errors, [str(e) for e in lib.errors]
    p = lib.get("clinic-fixed-start")
    screening = [ScreeningAnswer(i.id, False, date(2026, 3, 1), "dr") for i in lib.tables.screening]
    doses = {}
    for skin in ("I", "III", "VI"):
        area = Area(1, 1, "neck", "neck", "hypopigmented_scar", 4.0, skin)
        course = Course(1, 1, p.id, p.version, 10, 7, date(2026, 3, 2), (1,))
        a = plan_session(protocol=p, tables=lib.tables, course=course, areas=[area], history=[], screening=screening,
                         visit_date=date(2026, 3, 2), device_model="XTRAC").area(1)
        doses[skin] = a.target_dose_mj_cm2
    assert doses == {"I": 130, "III": 260, "VI": 280}


# ---- issue 11 item 3: one strict reader for every TOML file -----------------------------------------------------
@pytest.mark.parametrize("table,old,new,key,words", [
    ("light_dosing", "max_percent = 20", "max_percent = 20\nmax_percnt = 5", "escalation.max_percnt",
     "not a known key"),
    ("light_dosing", "max_mj_cm2 = 1000", "max_mj_cm2 = nan", "face.max_mj_cm2", "not a finite number; give a number"),
    ("light_dosing", "max_mj_cm2 = 1000", "max_mj_cm2 = inf", "face.max_mj_cm2", "not a finite number; give a number"),
    ("regions", "[regions]", "[regions]\nnose = { face = true, depth_class = \"face\", needle = false }",
     "regions.nose.needle", "not a known key"),
    ("intervals", "min_days = 2", "min_days = 2\nmax_days = -inf", "light.max_days", "not a known key"),
    ("screening", 'id = "porphyria"', 'id = "porphyria"\nblock = ["light"]', "items[1].block", "not a known key"),
    ("light_dosing", "{ from_days = 0, to_days = 7, action = \"keep\" }",
     "{ from_days = 0, to_days = 7, action = \"keep\", note = nan }", "missed.rules[0].note", "not a known key"),
    ("aftercare", 'source = "', 'sorce = "x"\nsource = "', "sorce", "not a known key"),
])
def test_table_files_are_read_strictly(tmp_path, table, old, new, key, words):
    import shutil

    shutil.copytree(seeds_dir(), tmp_path / "seeds")
    path = tmp_path / "seeds" / "tables" / f"{table}.toml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    lib = load_library(seeds=tmp_path / "seeds")
    assert lib.tables is None
    assert any(e.path == path and e.key == key and words in e.message for e in lib.errors), [str(e) for e in lib.errors]


@pytest.mark.parametrize("old,new,key,words", [
    ("escalation_percent = 10", "escalation_percent = nan", "light.escalation_percent", "not a finite number; give a number"),
    ("cumulative_cap_mj_cm2 = 20000", "cumulative_cap_mj_cm2 = inf", "light.cumulative_cap_mj_cm2", "not a finite number; give a number"),
    ('citation = "Photonet', 'note = nan\ncitation = "Photonet', "sources[2].note", "not a known key"),
    ('min_interval_days = "photonet"', "min_interval_days = 3.5", "light.cite.min_interval_days", "must be text"),
])
def test_protocol_files_are_read_strictly(tmp_path, old, new, key, words):
    text = LIGHT.read_text()
    assert old in text
    (tmp_path / "c.toml").write_text(text.replace(old, new, 1).replace('id = "', 'id = "clinic-', 1))
    lib = load_library([tmp_path])
    assert any(e.key == key and words in e.message for e in lib.errors), [str(e) for e in lib.errors]
    assert len(lib.protocols) == 5
