"""The clinic store: roles, migrations from every earlier version, transactions, pseudonymity."""

from __future__ import annotations

import sqlite3
from datetime import date

import pytest
from helpers_identity import identity_shown

from tests.conftest import sqlite_only
from workstation.errors import UserError
from workstation.protocols import load_library
from workstation.store import (
    LATEST_VERSION,
    ClinicStore,
    Identity,
    Response,
    Treatment,
    clinic_db_path,
    migrate,
    training_db_path,
)
from workstation.store.db import IntegrityError
from workstation.store.migrations import LEGACY_LATEST

SHA = "ab" * 32


@pytest.fixture()
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    return tmp_path / "cicatrix"


@pytest.fixture()
def store(store_url):
    s = ClinicStore.open(store_url, training=False)
    yield s
    s.close()


def _protocol(pid="hypopigmented-scar-light"):
    return load_library().get(pid)


def test_default_paths_follow_env_and_differ(data_dir):
    assert clinic_db_path() == data_dir / "clinic.sqlite3"
    assert training_db_path() != clinic_db_path()
    with ClinicStore.open(training=True) as s:
        assert s.path == training_db_path() and s.role == "training"


@sqlite_only  # SQLite's journal mode (the foreign key part runs on both: test_foreign_keys_and_latest_version)
def test_new_store_is_wal_with_foreign_keys_and_latest_version(store):
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.schema_version == LATEST_VERSION
    with pytest.raises(IntegrityError):
        with store.transaction() as c:
            c.execute("INSERT INTO areas (patient_id, label, body_region, lesion_type, size_cm2, skin_type) "
                      "VALUES (999, 'x', 'face', 'pih', 1, 'IV')")


def test_training_store_refuses_the_clinic_database_and_vice_versa(data_dir, tmp_path):
    ClinicStore.open(training=False).close()
    with pytest.raises(UserError, match="clinic database"):
        ClinicStore.open(clinic_db_path(), training=True)
    other = tmp_path / "renamed.sqlite3"
    clinic_db_path().rename(other)
    with pytest.raises(UserError, match="marked as a clinic database"):
        ClinicStore.open(other, training=True)
    ClinicStore.open(tmp_path / "t.sqlite3", training=True).close()
    with pytest.raises(UserError, match="marked as a training database"):
        ClinicStore.open(tmp_path / "t.sqlite3", training=False)
    with pytest.raises(UserError, match="training database"):
        ClinicStore.open(training_db_path(), training=False)


def test_foreign_files_are_refused(tmp_path):
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(UserError, match="not a Cicatrix database"):
        ClinicStore.open(junk, training=False)
    other = tmp_path / "other.sqlite3"
    sqlite3.connect(other).execute("CREATE TABLE x (a)")
    with pytest.raises(UserError, match="another program"):
        ClinicStore.open(other, training=False)


def _fill_v1(conn: sqlite3.Connection) -> None:
    conn.executescript("""
        INSERT INTO patients VALUES (1, 'CX-OLD1', '2026-01-01T00:00:00+00:00');
        INSERT INTO areas (id, patient_id, label, body_region, lesion_type, size_cm2, skin_type)
            VALUES (1, 1, 'left cheek', 'face', 'hypopigmented_scar', 2.0, 'III');
        INSERT INTO courses (id, patient_id, protocol_id, protocol_version, planned_sessions, interval_days,
                             started_on) VALUES (1, 1, 'hypopigmented-scar-light', 1, 10, 7, '2026-01-01');
        INSERT INTO course_areas VALUES (1, 1);
        INSERT INTO sessions (id, course_id, session_date) VALUES (1, 1, '2026-01-01');
        INSERT INTO responses (session_id, area_id, erythema_grade) VALUES (1, 1, 1);
    """)
    # a light row carries its session's date once the schema has the column (issue 17)
    light_on = any(r[1] == "light_on" for r in conn.execute("PRAGMA table_info(treatments)"))
    conn.execute(f"INSERT INTO treatments (session_id, area_id, modality, dose_mj_cm2{', light_on' * light_on}) "
                 f"VALUES (1, 1, 'light', 260{', ?' * light_on})", ("2026-01-01",) * light_on)


@pytest.mark.parametrize("start_version", range(0, LEGACY_LATEST + 1))
def test_migrates_from_each_earlier_version(tmp_path, start_version):
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    if start_version:
        migrate(conn, upto=start_version, role="clinic")
        _fill_v1(conn)
    conn.close()
    with ClinicStore.open(path, training=False) as s:
        assert s.schema_version == LATEST_VERSION
        if start_version:
            hist = s.history(1)
            assert hist[0].treatments[0].dose_mj_cm2 == 260
            assert hist[0].responses[0].erythema_grade == 1
            assert hist[0].responses[0].erythema_duration_h is None
            assert s.course(1).area_ids == (1,)
            assert s.area_changes(1) == []  # the table of migration 4 is there
        s.add_med(1 if start_version else s.create_patient().id, "XTRAC", 400, date(2026, 1, 2))


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "new.sqlite3"
    ClinicStore.open(path, training=False).close()
    sqlite3.connect(path).execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    with pytest.raises(UserError, match="newer than this program"):
        ClinicStore.open(path, training=False)


def test_failed_transaction_leaves_nothing(store):
    p = store.create_patient("CX-T1")
    with pytest.raises(RuntimeError):
        with store.transaction() as c:
            c.execute("INSERT INTO areas (patient_id, label, body_region, lesion_type, size_cm2, skin_type) "
                      "VALUES (?, 'a', 'face', 'pih', 1, 'IV')", (p.id,))
            raise RuntimeError("crash in the middle")
    assert store.areas(p.id) == []


def test_full_course_round_trip_and_export_without_identity(store):
    p = store.create_patient(identity=Identity("Smithson", "Alexandra", date(1990, 5, 6), "07700 900123"))
    assert p.pseudonym.startswith("CX-")
    assert store.identity(p.id).family_name == "Smithson"
    store.add_screening_answer(p.id, "pregnancy", True, date(2026, 1, 1), "dr a")
    store.add_screening_answer(p.id, "pregnancy", False, date(2026, 3, 1), "dr a")
    assert [a.answer for a in store.screening(p.id)] == [False]
    area = store.add_area(p.id, "left cheek", "face", "hypopigmented_scar", 3.5, "III")
    course = store.create_course(p.id, _protocol(), [area.id], date(2026, 3, 1))
    assert course.planned_sessions == 10 and course.interval_days == 7
    sid = store.add_session(course.id, date(2026, 3, 2), device_model="XTRAC", plan={"areas": []})
    store.add_treatment(sid, Treatment(area.id, "light", dose_mj_cm2=210))
    store.add_response(sid, Response(area.id, erythema_grade=1, pain_0_10=2, repigmentation_band="1-5"))
    store.link_recording(sid, "recordings/s1.h5", SHA.upper())
    store.record_override(sid, area.id, "target_dose_mj_cm2", 230, 210, "patient anxious", "dr a")
    (hist,) = store.history(course.id)
    assert hist.recording_sha256 == SHA and hist.device_model == "XTRAC"
    assert hist.treatment(area.id, "light").dose_mj_cm2 == 210
    assert store.session_plan(sid) == {"areas": []}
    assert store.overrides(sid)[0]["reason"] == "patient anxious"
    text = repr(store.export_patient(p.pseudonym))
    assert identity_shown(text, names=("Smithson", "Alexandra"), born=date(1990, 5, 6), contact="07700 900123") == []
    assert "left cheek" in text


def test_correcting_an_area_keeps_every_change_with_its_reason(store):
    p = store.create_patient("CX-A2")
    area = store.add_area(p.id, "left cheek", "face", "hypopigmented_scar", 3.5, "III")
    after = store.correct_area(area.id, lesion_type="pih", size_cm2=4.0, skin_type="III", who="dr a",
                               reason="  darker at week 2; remeasured  ")
    assert (after.lesion_type, after.size_cm2, after.skin_type) == ("pih", 4.0, "III")
    assert store.area(area.id) == after
    changes = store.area_changes(area.id)
    assert [(c.field, c.old, c.new) for c in changes] == [("lesion_type", "hypopigmented_scar", "pih"),
                                                          ("size_cm2", "3.5", "4.0")]  # skin type unchanged
    assert {c.reason for c in changes} == {"darker at week 2; remeasured"} and {c.who for c in changes} == {"dr a"}
    assert changes[0].at == changes[1].at  # one transaction, one time
    store.correct_area(area.id, label="left cheek scar", who="dr b", reason="clearer label")
    assert [c.field for c in store.area_changes(area.id)] == ["lesion_type", "size_cm2", "label"]
    (exported,) = store.export_patient("CX-A2")["areas"]
    assert exported["lesion_type"] == "pih" and [c["field"] for c in exported["changes"]] == [
        "lesion_type", "size_cm2", "label"]


@pytest.mark.parametrize(("changes", "match"), [
    ({"lesion_type": "acne"}, "Lesion type"),
    ({"skin_type": "VII"}, "Skin type"),
    ({"size_cm2": 0}, "must be above 0"),
    ({"label": " "}, "needs a label"),
    ({"lesion_type": "hypopigmented_scar"}, "nothing to change"),
    ({"lesion_type": "pih", "reason": " "}, "Say why"),
    ({"lesion_type": "pih", "who": ""}, "Say who"),
])
def test_a_bad_area_correction_is_a_sentence_and_changes_nothing(store, changes, match):
    p = store.create_patient("CX-A3")
    area = store.add_area(p.id, "a", "face", "hypopigmented_scar", 1, "III")
    kw = {"who": "dr a", "reason": "because", **changes}
    with pytest.raises(UserError, match=match):
        store.correct_area(area.id, **kw)
    assert store.area(area.id) == area and store.area_changes(area.id) == []
    with pytest.raises(UserError, match="no treatment area"):
        store.correct_area(999, lesion_type="pih", who="dr a", reason="x")


@pytest.mark.parametrize("call,match", [
    (lambda s, p: s.add_area(p.id, "a", "face", "acne", 1, "III"), "Lesion type"),
    (lambda s, p: s.add_area(p.id, "a", "face", "pih", 1, "VII"), "Skin type"),
    (lambda s, p: s.add_area(p.id, "a", "face", "pih", 0, "III"), "must be above 0"),
    (lambda s, p: s.create_course(p.id, _protocol(), [], date(2026, 1, 1)), "at least one"),
    (lambda s, p: s.create_course(p.id, _protocol(), [1], date(2026, 1, 1), planned_sessions=30), "outside"),
    (lambda s, p: s.create_course(p.id, _protocol(), [1], date(2026, 1, 1), interval_days=1), "outside"),
    (lambda s, p: s.link_recording(1, "x.h5", "abc"), "SHA-256"),
    (lambda s, p: s.add_response(1, Response(1, erythema_grade=5)), "erythema grade \\(NHS Tayside scale\\) is 5; it must be 0–4"),
    (lambda s, p: s.add_response(1, Response(1, repigmentation_band="50")), "band"),
    (lambda s, p: s.create_patient("CX-A1"), "already exists"),
    (lambda s, p: s.create_patient("bad id!"), "not valid"),
    (lambda s, p: s.get_patient("CX-NONE"), "No patient"),
    (lambda s, p: s.add_med(p.id, "", 300, date(2026, 1, 1)), "device model"),
    (lambda s, p: s.add_treatment(1, Treatment(1, "laser", dose_mj_cm2=1)), "light or needling"),
    (lambda s, p: s.add_treatment(99, Treatment(1, "light", dose_mj_cm2=1)), "no session record no. 99"),
    (lambda s, p: [s.link_recording(1, "a.h5", SHA) for _ in range(2)], "no recording linked yet"),
])
def test_bad_input_is_a_sentence(store, call, match):
    p = store.create_patient("CX-A1")
    area = store.add_area(p.id, "a", "face", "hypopigmented_scar", 1, "III")
    c = store.create_course(p.id, _protocol(), [area.id], date(2026, 1, 1))
    store.add_session(c.id, date(2026, 1, 1))
    with pytest.raises(UserError, match=match):
        call(store, p)


def test_recording_checksum_is_verified(store, tmp_path):
    import hashlib

    p = store.create_patient()
    area = store.add_area(p.id, "a", "back", "atrophic_scar", 4, "II")
    c = store.create_course(p.id, _protocol("atrophic-scar-needling"), [area.id], date(2026, 1, 1))
    sid = store.add_session(c.id, date(2026, 1, 1))
    store.set_recordings_root(tmp_path / "recordings")
    rec = tmp_path / "recordings" / "2026-01-01" / "s.h5"
    rec.parent.mkdir(parents=True)
    rec.write_bytes(b"recording bytes")
    store.link_recording(sid, rec, hashlib.sha256(b"recording bytes").hexdigest())
    assert store.recording(sid)[0] == "2026-01-01/s.h5"  # relative to the root the store records
    assert store.recording_path(sid) == rec and store.session_for_recording(rec) == sid
    assert store.verify_recording(sid)
    moved = tmp_path / "moved"  # the folder moves; the store is told its new root; nothing else changes
    (tmp_path / "recordings").rename(moved)
    store.set_recordings_root(moved)
    assert store.verify_recording(sid) and store.session_for_recording(moved / "2026-01-01" / "s.h5") == sid
    (moved / "2026-01-01" / "s.h5").write_bytes(b"tampered")
    assert not store.verify_recording(sid)
    elsewhere = tmp_path / "other.h5"  # outside the root: kept absolute, never relative to the current folder
    sid2 = store.add_session(c.id, date(2026, 1, 8))
    store.link_recording(sid2, elsewhere, "00" * 32)
    assert store.recording(sid2)[0] == str(elsewhere)
    with pytest.raises(UserError, match="no recording"):
        store.verify_recording(store.add_session(c.id, date(2026, 2, 1)))


def test_plan_overrides_are_stored_with_the_session(store):
    p = store.create_patient()
    area = store.add_area(p.id, "a", "back", "atrophic_scar", 4, "II")
    c = store.create_course(p.id, _protocol("atrophic-scar-needling"), [area.id], date(2026, 1, 1))
    plan = {"areas": [{"area_id": area.id, "overrides": [
        {"field": "depth_mm", "proposed": 1.5, "value": 1.6, "reason": "deep scar", "who": "dr b",
         "at": "2026-01-01T10:00:00+00:00"}]}]}
    sid = store.add_session(c.id, date(2026, 1, 1), plan=plan)
    (row,) = store.overrides(sid)
    assert (row["field"], row["proposed"], row["value"], row["reason"], row["who"]) == (
        "depth_mm", 1.5, 1.6, "deep scar", "dr b")


def test_course_area_must_belong_to_patient(store):
    a, b = store.create_patient(), store.create_patient()
    area = store.add_area(b.id, "x", "back", "atrophic_scar", 4, "II")
    with pytest.raises(UserError, match="another patient"):
        store.create_course(a.id, _protocol("atrophic-scar-needling"), [area.id], date(2026, 1, 1))


def test_identity_is_added_once_and_never_overwritten(store):
    p = store.create_patient("CX-I1")
    assert store.identity(p.id) is None
    with pytest.raises(UserError, match="family name and a given name"):
        store.add_identity(p.id, Identity(" ", "Ann"))
    store.add_identity(p.id, Identity(" Smithson ", "Alexandra", date(1990, 5, 6)))
    assert store.identity(p.id) == Identity("Smithson", "Alexandra", date(1990, 5, 6))
    with pytest.raises(UserError, match="already has an identity"):
        store.add_identity(p.id, Identity("Other", "Name"))
    assert store.identity(p.id).family_name == "Smithson"
    with pytest.raises(UserError, match="family name and a given name"):
        store.create_patient("CX-I2", identity=Identity("", ""))
    assert store.find_patient("CX-I2") is None  # the failed identity rolled the patient back too
