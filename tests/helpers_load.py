"""Running a headless scenario that kills itself (SIGKILL) on a loaded machine.

On a machine so loaded that the runner's process is not scheduled for 250 ms, its telemetry or heartbeat interlock
stops the exposure before the scenario's kill: that is the watchdog doing its job (docs/safety.md), not a failure of
what a crash test tests (the next start closing the session). Such a run is made again from nothing, up to
`attempts` times; any other outcome is returned as it is, for the test to judge.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

from drivers.codes import InterlockCause

LOAD_TRIPS = ("Telemetry interlock", "Heartbeat interlock")  # the runner's words for telemetry_lost, heartbeat_lost
LOAD_INTERLOCKS = (InterlockCause.TELEMETRY_LOST, InterlockCause.HEARTBEAT_LOST)  # as a recording names them


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
