"""The settings in force: defaults in the platform's places, then cicatrix.toml, then the command line; a bad file is
an error naming the file, the key and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from main import main
from workstation import places
from workstation.errors import UserError
from workstation.settings import load_settings


def _write(text: str) -> Path:
    places.config_dir().mkdir(parents=True, exist_ok=True)
    places.settings_file().write_text(text)
    return places.settings_file()


def test_defaults_are_the_platform_places(user_folders):
    s = load_settings()
    assert s.file == user_folders / "xdg_config_home" / "cicatrix" / "cicatrix.toml"
    assert s["paths.store"] == user_folders / "xdg_data_home" / "cicatrix" / "clinic.sqlite3"
    assert s["paths.recordings"] == user_folders / "xdg_data_home" / "cicatrix" / "recordings"
    assert s["paths.protocols"] is None and s["ports.light"] is None and s["window.idle_lock_minutes"] == 10
    assert {x.source for x in s.all()} == {"default"}
    assert places.log_dir() == user_folders / "xdg_state_home" / "cicatrix" / "log"


def test_file_overrides_defaults_and_command_line_overrides_file(tmp_path, capsys):
    f = _write('[paths]\nstore = "db/clinic.sqlite3"\nrecordings = "~/recs"\n[ports]\nlight = "/dev/ttyUSB0"\n'
               '[window]\nidle_lock_minutes = 15\n')
    s = load_settings()
    assert s["paths.store"] == f.parent / "db" / "clinic.sqlite3"  # relative to the file's folder
    assert s["paths.recordings"] == Path.home() / "recs"
    assert s["ports.light"] == "/dev/ttyUSB0" and s["window.idle_lock_minutes"] == 15
    assert s.setting("paths.store").source == f"settings file {f}"
    assert s.setting("ports.pen").source == "default"

    assert main(["settings", "--store", str(tmp_path / "cli.sqlite3"), "--pen-port", "/dev/ttyACM3"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()

    def shown(name: str) -> tuple[str, str]:
        i = next(i for i, line in enumerate(lines) if line.startswith(name + " "))
        return lines[i].split(None, 1)[1], lines[i + 1].strip()

    assert shown("paths.store") == (str(tmp_path / "cli.sqlite3"), "from command line --store; "
                                    "the clinic store (SQLite file)")
    assert shown("ports.pen")[0] == "/dev/ttyACM3" and shown("ports.pen")[1].startswith("from command line --pen-port")
    assert shown("ports.light")[0] == "/dev/ttyUSB0" and shown("ports.light")[1].startswith(f"from settings file {f}")
    assert shown("paths.protocols") == ("(not set)", "from default; the clinic's own protocol folder, loaded "
                                        "after the factory library")
    assert f"settings file: {f}\n" in out


def test_explicit_settings_file_is_used(tmp_path, capsys):
    other = tmp_path / "site.toml"
    other.write_text('[ports]\npen = "/dev/ttyS4"\n')
    assert main(["--settings", str(other), "settings"]) == 0
    assert f"from settings file {other}" in capsys.readouterr().out
    assert main(["--settings", str(tmp_path / "absent.toml"), "settings"]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize(("text", "key", "allowed"), [
    ("[paths]\nstores = 'x'\n", "paths.stores", "known keys in [paths]: clinic_recordings, protocols, recordings, store"),
    ("[device]\nlight = 'x'\n", "device", "known sections: clinic, paths, ports, store, window"),
    ("[ports]\nlight = 3\n", "ports.light", "must be text in quotes, not a whole number (3)"),
    ("[paths]\nstore = ''\n", "paths.store", "is empty; give a path in quotes, or remove the line"),
    ("[window]\nidle_lock_minutes = 'ten'\n", "window.idle_lock_minutes", "must be a whole number of minutes"),
    ("[window]\nidle_lock_minutes = 500\n", "window.idle_lock_minutes", "allowed: 0 (never) to 240 minutes"),
    ("[window]\nidle_lock_minutes = true\n", "window.idle_lock_minutes", "not true/false"),
    ("paths = 'x'\n", "paths", "must be a table ([paths])"),
])
def test_invalid_file_names_file_key_and_allowed_values(text, key, allowed, capsys):
    f = _write(text)
    with pytest.raises(UserError) as caught:
        load_settings()
    assert f"{f}: {key}: " in str(caught.value) and allowed in str(caught.value)
    assert main(["settings"]) == 2  # and every command that reads the settings refuses the same way
    err = capsys.readouterr().err
    assert f"{f}: {key}: " in err and "Traceback" not in err


def test_every_error_in_a_file_is_reported_at_once():
    _write("[paths]\nstor = 'x'\n[ports]\npen = 1\n")
    with pytest.raises(UserError, match="(?s)paths.stor: .*ports.pen: "):
        load_settings()


def test_syntax_error_is_a_sentence(capsys):
    f = _write("[paths\nstore = 'x'\n")
    assert main(["settings"]) == 2
    err = capsys.readouterr().err
    assert f"{f}: is not valid TOML" in err and "line 1" in err


def test_run_refuses_a_clinic_protocol_folder_that_is_not_there(tmp_path, capsys):
    _write(f"[paths]\nprotocols = '{tmp_path / 'absent'}'\n")
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "clinic protocol folder" in err and "settings file" in err
