"""Shared fixtures: device emulators on real pseudo-terminals with the real drivers connected to them."""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal

import pytest

# The driver kit's contract assertions show their values when they fail (pytest rewrites asserts only in modules
# it is told of before they are imported).
pytest.register_assert_rewrite("drivers.testing")
from PyQt6.QtCore import Qt  # noqa: E402

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# A run started in the background of a non-interactive shell (`make test &`, a CI runner's job) inherits Ctrl+C ignored,
# and so would every `main.py` the tests start: the tests that send SIGINT to a session or an emulator then wait for an
# end that never comes. Give the run Python's own Ctrl+C handler back, so the processes it starts get the default
# disposition and install theirs, as they do when started from a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

from drivers.emulators.lamp import LampParams  # noqa: E402
from drivers.emulators.light import LightEmulator  # noqa: E402
from drivers.emulators.pen import PenEmulator  # noqa: E402
from drivers.light import UVB308Light  # noqa: E402
from drivers.pen import MicroneedlingPen  # noqa: E402
from drivers.testing import Tap, wait_for  # noqa: E402, F401 - one copy for the project's tests and a driver kit's
from workstation.bus import SessionBus  # noqa: E402
from workstation.logsetup import stop_logging  # noqa: E402

XDG_VARS = ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME")


@pytest.fixture(autouse=True, scope="session")
def workstation_folders(tmp_path_factory):
    """For the whole run (module-scoped fixtures included): user folders of the run, never the real ones, and one
    workstation key folder, so a recording made by one test's fixture verifies as this workstation's in another."""
    base = tmp_path_factory.mktemp("workstation")
    saved = {var: os.environ.get(var) for var in XDG_VARS}
    os.environ.update({var: str(base / var.lower()) for var in XDG_VARS})
    keys = base / "xdg_config_home" / "cicatrix" / "keys"  # where workstation.keys looks with the run's folders
    keys.mkdir(mode=0o700, parents=True)
    yield keys
    for var, value in saved.items():
        if value is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = value


# A wait is not a claim (docs/benchmarks.md): qtbot's waits for something to happen get at least this long, so a
# loaded machine finishes them. Their 5 s default, and the short timeouts written beside them, failed under load; how
# fast things happen is measured in bench/. A wait that meets its condition returns at once, whatever its timeout.
QT_WAIT_FLOOR_MS = 30_000


@pytest.fixture(autouse=True, scope="session")
def qt_waits_load_cannot_break():
    from pytestqt.qtbot import QtBot

    patch = pytest.MonkeyPatch()
    for name in ("waitUntil", "waitSignal", "waitSignals", "waitCallback"):
        wait = getattr(QtBot, name)

        def floored(self, *args, _wait=wait, timeout=5000, **kwargs):
            if timeout is not None and timeout > 0:  # 0 or less, or None: no timeout at all, kept
                timeout = max(timeout, QT_WAIT_FLOOR_MS)
            return _wait(self, *args, timeout=timeout, **kwargs)

        patch.setattr(QtBot, name, floored)
    yield
    patch.undo()


@pytest.fixture(scope="session")
def pg_server():
    """One throw-away PostgreSQL server for the run (workstation.store.pgserver): a test takes its own database from
    it with `pg_server.create_database(name)`. Started on first use only; `.ci/run` installs Debian's postgresql."""
    from workstation.errors import UserError
    from workstation.store.pgserver import ThrowawayPostgres, server_bin_dir

    try:
        server_bin_dir()
    except UserError as exc:  # a workstation without PostgreSQL still runs `make test`; CI requires the server
        if os.environ.get("CICATRIX_REQUIRE_POSTGRESQL"):
            raise
        pytest.skip(f"{exc} The PostgreSQL cases are skipped here (CI installs it and runs them).")
    with ThrowawayPostgres() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    """Where a store test's store is, once per engine (issue 17: every store test on both): an SQLite file in the
    test's folder, or a new empty database of the run's throw-away PostgreSQL server (`pg_server`). Give it to
    `ClinicStore.open`. A test about SQLite itself (its files, WAL, raw sqlite3) takes `sqlite_only`."""
    if request.param == "sqlite":
        return str(tmp_path / "store.sqlite3")
    return request.getfixturevalue("pg_server").create_database(f"t_{secrets.token_hex(6)}")


sqlite_only = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
"""For a test that uses `store_url` through a fixture but is about SQLite itself (files, WAL, raw sqlite3)."""


@pytest.fixture(autouse=True)
def user_folders(tmp_path_factory, monkeypatch, workstation_folders):
    """Each test has its own user data, config and log folders (platformdirs follows XDG_*): a test never reads the
    real settings file nor writes into the real store, recordings or log. Logging set up by main() is undone. The
    workstation's keys are the run's (see workstation_folders)."""
    base = tmp_path_factory.mktemp("user")
    for var in XDG_VARS:
        monkeypatch.setenv(var, str(base / var.lower()))
    (base / "xdg_config_home" / "cicatrix").mkdir(parents=True)
    (base / "xdg_config_home" / "cicatrix" / "keys").symlink_to(workstation_folders, target_is_directory=True)
    yield base
    stop_logging()


def make_emulator(kind: str, **kw):
    """An emulator with a short lamp warm-up so tests reach full output quickly."""
    if kind == "light":
        kw.setdefault("lamp", LampParams(warmup_s=0.3))
        return LightEmulator(**kw)
    return PenEmulator(**kw)


@pytest.fixture
def bus_tap():
    bus = SessionBus()
    tap = Tap()
    bus.subscribe(tap)
    return bus, tap


@pytest.fixture(params=["light", "pen"])
def rig(request, bus_tap):
    """(kind, emulator, driver, tap) with the driver connected."""
    kind = request.param
    bus, tap = bus_tap
    emu = make_emulator(kind, seed=7).start()
    cls = UVB308Light if kind == "light" else MicroneedlingPen
    drv = cls(emu.port, bus=bus)
    drv.connect()
    yield kind, emu, drv, tap
    drv.close()
    emu.stop()


CLINICIAN_PASSWORD = "dr-a-password"


def make_clinician(store_path, account: str = "dr-a", password: str = CLINICIAN_PASSWORD) -> None:
    """Accounts in the clinic store at `store_path` as a clinic would have them: an administrator and `account`, a
    clinician with `password`."""
    from workstation.store import ClinicStore
    from workstation.store import operators as ops

    with ClinicStore.open(store_path, training=False) as store:
        if not ops.operators(store):
            ops.add(store, "admin", "Administrator", "administrator", "admin-password", created_by="test set-up")
        if ops.find(store, account) is None:
            ops.add(store, account, "Dr A. Example", "clinician", password, created_by="admin")


def sign_in(qtbot, win, account: str = "dr-a", password: str = CLINICIAN_PASSWORD, timeout_ms: int = 20_000) -> None:
    """Answer the window's sign-in page (after Connect in clinical mode) as the user would."""
    page = win.sign_in
    qtbot.waitUntil(lambda: win.pages.currentWidget() is page and page.submit.isEnabled(), timeout=timeout_ms)
    page.account.setText(account)
    page.password.setText(password)
    qtbot.mouseClick(page.submit, Qt.MouseButton.LeftButton)


@pytest.fixture
def window(qtbot, tmp_path):
    """The workstation window, shown, with its recordings (tmp_path/recordings) and its store (tmp_path/store.sqlite3)
    in the test's own folder; closed afterwards (which stops any device and closes any recording)."""
    from workstation.ui.main_window import MainWindow

    win = MainWindow(recordings_dir=tmp_path / "recordings", store_path=tmp_path / "store.sqlite3")
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()


@pytest.fixture
def visit(tmp_path):
    """A training visit of the uneventful combined scenario on emulated devices, not begun (the test begins it as the
    case needs: trips that abort or pause), with its recordings and store in the test's own folder; closed afterwards.
    A module whose cases need it begun defines its own `visit` (test_held_up, test_recovery)."""
    from pathlib import Path

    from workstation.session.scenario import load_scenario
    from workstation.session.visit import Visit

    scenario = Path(__file__).resolve().parents[1] / "seeds" / "scenarios" / "combined-uneventful.toml"
    v = Visit.training(load_scenario(scenario), tmp_path / "rec", store_path=tmp_path / "t.sqlite3")
    yield v
    v.close()


# --- A test stopped by a load trip runs once more -------------------------------------------------------------------
# On a loaded machine a thread that supervises a device can go unscheduled for 250 ms: the telemetry or heartbeat
# interlock then stops the session, as it must (docs/safety.md), and a test that expected the session to run its
# course fails though nothing it tests went wrong. Such a failure, and only such a one (a `telemetry_lost` or
# `heartbeat_lost` interlock published in this test process during the failed attempt, or the runner's words for one
# in the failure's text when the session ran in a subprocess), runs the test again from nothing
# (pytest-rerunfailures: fresh fixtures), up to LOAD_RERUNS times; any other failure stands at once. The terminal
# summary names every test run again and the trip that caused it, so the count stays visible, and a failure that
# stands says whether its own attempt had a load trip too ("load trips in this attempt").
LOAD_RERUNS = 4  # a window session test met two load trips in a row once in ten loaded runs (sixth session); a
# signalled headless session three in a row at load 6 on two cores (twelfth session, test_s11_signal_in_library)
_load_trips: list[str] = []  # the current attempt's, "heartbeat_lost on pen"
_run_again: list[tuple[str, str]] = []  # (test, trips) of every test run again for a load trip


class _LoadTripLog(logging.Handler):
    """Collects the load interlocks (helpers_load.LOAD_INTERLOCKS) the session bus logs (workstation.bus:
    "interlock high safety: …", its details as JSON last)."""

    def emit(self, record: logging.LogRecord) -> None:
        from helpers_load import LOAD_INTERLOCKS

        args = record.args if isinstance(record.args, tuple) else ()
        if len(args) == 5 and args[0] == "interlock":
            details = json.loads(str(args[4]))
            if details.get("interlock") in {cause.value for cause in LOAD_INTERLOCKS}:
                _load_trips.append(f"{details['interlock']} on {details.get('device', '?')}")


def pytest_configure(config) -> None:
    handler = _LoadTripLog(level=logging.WARNING)
    logging.getLogger("workstation.events").addHandler(handler)


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if item.get_closest_marker("flaky") is None:
            item.add_marker(pytest.mark.flaky(reruns=LOAD_RERUNS, condition=_tripped_by_load(item.nodeid)))


def _tripped_by_load(nodeid: str):
    """The rerun condition of `nodeid`: a load trip in this attempt, published in this process, or said by a session
    run in a subprocess in the failure's text or in the texts the failing test held (the runner's words or the bus's
    log line, helpers_load.load_trip_words_of_failure). pytest-rerunfailures asks it after every phase, passed ones
    too: what is run again is counted where it is reported (`pytest_runtest_logreport`)."""
    from helpers_load import load_trip_words_of_failure

    def condition(error: BaseException | None = None) -> bool:
        if error is not None and not _load_trips:
            _load_trips.extend(f"{words} (in a subprocess)" for words in load_trip_words_of_failure(error))
        return bool(_load_trips)

    return condition


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and _load_trips:  # shown with the failure, whether it is run again or stands
        report.sections.append(("load trips in this attempt", ", ".join(sorted(set(_load_trips)))))


def pytest_runtest_logreport(report) -> None:
    if report.outcome == "rerun":  # pytest-rerunfailures' report of the failed attempt, before the next begins
        _run_again.append((report.nodeid, ", ".join(sorted(set(_load_trips))) or "?"))


@pytest.fixture(autouse=True)
def _load_trips_of_this_attempt():
    _load_trips.clear()
    yield


def pytest_terminal_summary(terminalreporter) -> None:
    if _run_again:
        terminalreporter.section("tests run again after a load trip")
        for nodeid, trips in _run_again:
            terminalreporter.write_line(f"{nodeid}: {trips}")
