"""No control character of any text reaches the terminal raw (fresh tester of issue 12: ESC and BEL from texts that
do not come from a device, a file name, a recording's event, a typed value, were printed as they were)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from helpers_recording import write_session
from hypothesis import given
from hypothesis import strategies as st

from drivers.protocol import is_control
from workstation.bus import Event
from workstation.terminal import terminal_text

ROOT = Path(__file__).resolve().parents[1]
T0 = 1000.0
LOGS = Path()
NASTY = "\x1b]0;owned\x07\x1b[2J\x85\x9b\x7f"  # set the title, ring, clear the screen, C1 NEL/CSI, DEL


@given(st.text(st.characters(codec=None, exclude_categories=())))
def test_terminal_text_keeps_newlines_and_tabs_and_nothing_else_that_controls(text):
    shown = terminal_text(text)
    assert len(shown) == len(text)  # one character for one: columns and lines stay where they were
    assert all(not is_control(ch) or ch in "\n\t" for ch in shown)
    shown.encode("utf-8")  # a lone surrogate cannot make a print fail
    assert [i for i, ch in enumerate(shown) if ch == "\n"] == [i for i, ch in enumerate(text) if ch == "\n"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    return subprocess.run([sys.executable, str(ROOT / "main.py"), "--log-dir", str(LOGS), *args], capture_output=True, timeout=120, env=env,
                          cwd=ROOT)


def _assert_clean(out: bytes) -> None:
    text = out.decode("utf-8")
    bad = sorted({f"U+{ord(ch):04X}" for ch in text if is_control(ch) and ch not in "\n\t"})
    assert not bad, f"control characters reached the terminal: {bad}"


def test_a_file_name_and_a_recordings_texts_reach_the_terminal_without_controls(tmp_path):
    global LOGS
    LOGS = tmp_path / "logs"
    missing = _cli("inspect", str(tmp_path / f"scan{NASTY}.h5"))
    assert missing.returncode == 2 and b"no such recording" in missing.stderr
    _assert_clean(missing.stdout + missing.stderr)

    events = [Event(T0 + 0.1, "note", "info", f"operator{NASTY}", f"note{NASTY}", {"text": NASTY + "\0"}),
              Event(T0 + 0.2, "interlock", "high", "safety", f"INTERLOCK estop on light{NASTY}",
                    {"device": "light", "interlock": "estop", "source": f"key{NASTY}"})]
    path = write_session(tmp_path, 0.2, events=events, t0_host_s=T0)
    odd = path.with_name(f"room{NASTY}.h5")
    shutil.move(path, odd)
    for args in (("inspect", str(odd)), ("audit", str(odd)), ("export", str(odd), "--csv", str(tmp_path / "csv"))):
        done = _cli(*args)
        # audit exits 1 when the recorded trips differ from its re-run (these events were made up): not an error
        assert done.returncode in (0, 1, 3) and b"internal error" not in done.stderr, (args, done.stderr[-2000:])
        _assert_clean(done.stdout + done.stderr)
        if args[0] != "export":  # export prints the CSV files it wrote
            assert b"room" in done.stdout + done.stderr  # the name is shown, its controls as spaces


def test_an_argument_that_is_not_utf8_is_a_sentence_and_one_log_line(tmp_path):
    """Fresh tester of issue 12: a Latin-1 file name (`caf\\xe9.h5`) crashed every command before its error handling
    (the crash log's header could not encode it); U+2028 in an argument split that header and faked a crash."""
    global LOGS
    LOGS = tmp_path / "logs"
    name = os.fsencode(str(tmp_path)) + b"/caf\xe9\xe2\x80\xa8.h5"
    done = subprocess.run([sys.executable, str(ROOT / "main.py"), "--log-dir", str(LOGS), "inspect", name],
                          capture_output=True, timeout=120, cwd=ROOT, env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    assert done.returncode == 2 and b"no such recording" in done.stderr and b"Traceback" not in done.stderr
    _assert_clean(done.stdout + done.stderr)
    header = [line for line in (LOGS / "crash.log").read_text(encoding="utf-8").splitlines() if "inspect" in line]
    assert len(header) == 1 and "\\udce9" in header[0] and "\\u2028" in header[0]
    again = subprocess.run([sys.executable, str(ROOT / "main.py"), "--log-dir", str(LOGS), "inspect", name],
                           capture_output=True, timeout=120, cwd=ROOT)
    assert b"crash" not in again.stdout + again.stderr  # no false "a hard crash was recorded"
    log_text = (LOGS / "cicatrix.log").read_text(encoding="utf-8")
    assert "hard crash" not in log_text and "\x1b" not in log_text


def test_a_text_that_is_not_utf8_is_refused_in_words_where_it_would_be_stored(tmp_path):
    """Fresh tester of issue 12: a recordings folder, a store setting or an operator's name with a Latin-1 byte
    crashed the command when it reached the store (SQLite cannot take the lone surrogate Python reads it as)."""
    global LOGS
    LOGS = tmp_path / "logs"
    folder = os.fsencode(str(tmp_path)) + b"/r\xe9"
    done = subprocess.run([sys.executable, str(ROOT / "main.py"), "--log-dir", str(LOGS), "session", "--simulate",
                           "--scenario", str(ROOT / "seeds" / "scenarios" / "combined-uneventful.toml"), "--record",
                           folder, "--store", str(tmp_path / "t.sqlite3")],
                          capture_output=True, timeout=180, cwd=ROOT)
    assert done.returncode == 2 and b"not UTF-8" in done.stderr, done.stderr[-1500:]
    assert b"internal error" not in done.stderr and b"Traceback" not in done.stderr


def test_a_typed_value_with_a_byte_that_is_not_utf8_is_shown_as_typed_not_escaped(tmp_path):
    """Second fresh tester of issue 12: argparse named a bad value as 'x\\udce9' (Python's escape of the Latin-1
    byte é). It shows as '?', as every other undecodable byte on the terminal."""
    done = subprocess.run([os.fsencode(sys.executable), os.fsencode(ROOT / "main.py"), b"audit", b"--tolerance-ms",
                           b"x\xe9", os.fsencode(tmp_path / "r.h5")], capture_output=True, timeout=60, cwd=ROOT)
    err = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 2 and "invalid float value: 'x?'" in err and "\\udc" not in err, err
