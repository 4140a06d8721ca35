"""Every command and the window use the store in force when `[store] url` names the clinic's server (from the fresh
tester of issue 17: `devices` and `recording sync` used a local file, the window stopped with a share set, and
`session --store URL` wrote a file named after the URL)."""

from __future__ import annotations

from pathlib import Path

from main import main
from workstation.store import ClinicStore


def _settings(tmp_path: Path, url: str, share: Path | None = None) -> Path:
    file = tmp_path / "cicatrix.toml"
    text = f'[store]\nurl = "{url}"\n'
    if share is not None:
        text += f'\n[paths]\nclinic_recordings = "{share}"\n'
    file.write_text(text)
    return file


def test_devices_and_recording_sync_use_the_server_named_in_the_settings(pg_server, tmp_path, capsys):
    url = pg_server.create_database("commands_url")
    with ClinicStore.open(url, training=False) as s:
        s._conn.execute("INSERT INTO devices (serial_number, kind, model, lamp_hours, reported_factor, first_seen, "
                        "last_seen) VALUES ('UVB308-SRV-1', 'light', 'UVB-308', 12, 1.0, '2026-11-30', '2026-11-30')")
    share = tmp_path / "share"
    share.mkdir()
    settings = _settings(tmp_path, url, share)
    assert main(["--settings", str(settings), "devices"]) == 0
    out = capsys.readouterr().out
    assert "UVB308-SRV-1" in out and "Devices on record (1)" in out
    assert main(["--settings", str(settings), "recording", "sync", "--list"]) == 0
    out = capsys.readouterr().out
    assert "0 recordings of this workstation" in out and "There is no store" not in out


def test_a_simulated_session_refuses_a_store_url_in_words(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(["session", "--simulate", "--scenario", "combined-uneventful", "--store",
                 "postgresql+psycopg://cicatrix_app@127.0.0.1:5432/cicatrix"])
    assert code == 2
    assert "takes a training store FILE, not a URL" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # no file named after the URL


def test_the_window_opens_on_a_server_store_with_a_share_set(pg_server, tmp_path, qtbot):
    from workstation.session.visit import Places
    from workstation.ui.main_window import MainWindow

    url = pg_server.create_database("window_url")
    ClinicStore.open(url, training=False).close()
    share = tmp_path / "share"
    share.mkdir()
    places = Places(clinic_store=url, training_recordings=tmp_path / "training", clinic_recordings=share)
    win = MainWindow(recordings_dir=tmp_path / "rec", places=places)
    qtbot.addWidget(win)
    win.start_share_copies()  # raised AttributeError ('str' has no is_file) with a URL
