"""Running a headless scenario on a loaded machine.

On a machine so loaded that the runner's process is not scheduled for 250 ms, its telemetry or heartbeat interlock
stops the exposure: that is the watchdog doing its job (docs/safety.md), not a failure of what the test tests. Such a
run is made again from nothing, up to `attempts` times; any other outcome is returned as it is, for the test to judge.

A test function is run again by the rerun rule (conftest.py: fresh fixtures), but a module-scoped fixture that
returned is reused by the rerun as it was: a fixture that runs a session takes `scenario_run`, which makes the
session again itself.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from drivers.codes import InterlockCause

LOAD_TRIPS = ("Telemetry interlock", "Heartbeat interlock")  # the runner's words for telemetry_lost, heartbeat_lost
LOAD_INTERLOCKS = (InterlockCause.TELEMETRY_LOST, InterlockCause.HEARTBEAT_LOST)  # as a recording names them
# The session bus's log line of such a trip ("interlock high safety: INTERLOCK heartbeat_lost on light: …"), which a
# subprocess that is not the headless runner prints (the screenshot tour: a tenth-session loaded run failed on it)
TESTS = Path(__file__).resolve().parent
LOAD_TRIP_LOGGED = re.compile(r"INTERLOCK (" + "|".join(i.value for i in LOAD_INTERLOCKS) + r") on (\w+):")


def load_trip_words(text: str) -> list[str]:
    """The load trips a subprocess's output names: in the runner's words (LOAD_TRIPS) or as the bus logged them."""
    return ([words for words in LOAD_TRIPS if words in text]
            + sorted({f"{m[1]} on {m[2]}" for m in LOAD_TRIP_LOGGED.finditer(text)}))


def load_trip_words_of_failure(error: BaseException) -> list[str]:
    """`load_trip_words` of a failed test: its error's text, and the texts the test's own frames held when it failed
    (a subprocess's output in a string, a list of its lines, or a CompletedProcess's stdout and stderr). pytest
    shortens a message that is not a string: a list of a run's summary lines lost the trip's line in the middle, and
    an eleventh-session run failed without the rerun the trip called for."""
    texts = [str(error)]
    tb = error.__traceback__
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename).resolve().parent == TESTS:
            for value in list(tb.tb_frame.f_locals.values()):
                texts.extend(_texts_of(value))
        tb = tb.tb_next
    return load_trip_words("\n".join(texts))


def _texts_of(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, str)]
    return [v for v in (getattr(value, "stdout", None), getattr(value, "stderr", None)) if isinstance(v, str)]


def run_until_killed(cmd: list[str], fresh: list[Path], attempts: int = 3, **kw) -> subprocess.CompletedProcess:
    """`subprocess.run(cmd, capture_output=True, text=True, **kw)` until the scenario's SIGKILL ends it, or until a
    run ends another way than a load trip. `fresh`: the store files and folders the run writes, removed before each
    new attempt so it starts as the first did."""
    for _ in range(attempts):
        done = subprocess.run(cmd, capture_output=True, text=True, **kw)
        if done.returncode == -signal.SIGKILL or not any(words in done.stdout for words in LOAD_TRIPS):
            return done
        for path in fresh:
            if path.is_dir():
                shutil.rmtree(path)
            else:  # a store file with SQLite's companions (a stale -wal would be replayed into a new store)
                for f in (path, *(path.with_name(path.name + end) for end in ("-wal", "-shm", "-journal"))):
                    f.unlink(missing_ok=True)
    return done


def load_trips(trips: Iterable[dict[str, Any]]) -> list[str]:
    """The load trips among a run's trips (`RunResult.summary["trips"]`): a telemetry or heartbeat trip on a device
    the run did not see unplugged (an unplugged device's telemetry stops too: that trip is the scenario's own)."""
    trips = list(trips)
    unplugged = {t["device"] for t in trips if t["interlock"] == InterlockCause.DISCONNECTED}
    return [f"{InterlockCause(t['interlock']).value} on {t['device']}" for t in trips
            if t["interlock"] in LOAD_INTERLOCKS and t["device"] not in unplugged]


def scenario_run(name: str, folder: Path, *, out: Callable[[str], None] = lambda _line: None, attempts: int = 3):
    """`run_scenario` of seeds/scenarios/`name`.toml recording into `folder`, made again in a new subfolder while a
    load trip stopped it, up to `attempts` times. Returns the `RunResult` of the first attempt no load trip stopped
    (AssertionError naming the trips if none); `out` gets that attempt's lines only."""
    from workstation.protocols.library import seeds_dir
    from workstation.session.runner import run_scenario
    from workstation.session.scenario import load_scenario

    scenario = seeds_dir() / "scenarios" / f"{name}.toml"
    for attempt in range(attempts):
        lines: list[str] = []
        result = run_scenario(load_scenario(scenario), folder / f"attempt-{attempt}", out=lines.append)
        if not (tripped := load_trips(result.summary["trips"])):
            break
    else:  # in the bus's words, for the rerun rule (a module fixture's own trips are cleared before its test runs)
        raise AssertionError(f"{name}: a load trip stopped each of its {attempts} attempts: "
                             + "; ".join(f"INTERLOCK {words}:" for words in tripped))
    for line in lines:
        out(line)
    return result


def with_internal_error(text: str) -> str:
    """`text` (a subprocess's output), and when it says an internal error stopped the command, the traceback that the
    program saved in its log file ("details were saved to <path>"): a failure on a loaded run is then diagnosable
    after the run's temporary folders are gone (tenth session: a SIGTERM while planning ended "internal error")."""
    found = re.search(r"details were saved to (\S+\.log)", text)
    if not found:
        return text
    try:
        log = Path(found[1]).read_text(errors="replace")
    except OSError as exc:
        return f"{text}\n(its log could not be read: {exc})"
    return f"{text}\n--- the last traceback in {found[1]} ---\n{log[log.rfind('Traceback'):][-6000:]}"
