"""The workstation asks for a higher scheduling priority while it supervises devices (workstation/session/rig.py,
`raise_priority`; docs/safety.md, "Priority"), so that other programs on a busy PC cannot starve its device readers,
its safety watchdog and its heartbeats past their 250 ms limits. Refused (a normal user without CAP_SYS_NICE), it
says so once in the log and supervises at normal priority: the watchdogs still stop the devices (they fail safe)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# A real simulation rig in a process of its own: every thread's niceness while it supervises, then a session's worth
# of connect (the rig works either way).
PROBE = """
import logging, os, sys
os.setpriority(os.PRIO_PROCESS, 0, max(0, os.getpriority(os.PRIO_PROCESS, 0)))  # not the test process's raised one
logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
from workstation.session.rig import Rig, SUPERVISION_NICE
rig = Rig.simulation(light_warmup_s=0.2)
try:
    nice = sorted({os.getpriority(os.PRIO_PROCESS, int(t)) for t in os.listdir("/proc/self/task")})
    print("NICE", *nice)
    print("CONNECTED", sorted(d.identity.model for d in rig.devices.values()))
finally:
    rig.close()
"""


def _probe(*prefix: str) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def _nice(out: str) -> list[int]:
    return [int(x) for x in next(line for line in out.splitlines() if line.startswith("NICE")).split()[1:]]


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread niceness is Linux's")
def test_every_thread_supervising_devices_runs_at_the_raised_priority_when_allowed():
    from workstation.session.rig import SUPERVISION_NICE

    if os.geteuid() != 0:  # the other branch is the next test's
        pytest.skip("raising a priority needs CAP_SYS_NICE (root here)")
    done = _probe()
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert _nice(done.stdout) == [SUPERVISION_NICE], done.stdout  # the emulators', readers', watchdog's, this one
    assert "normal priority" not in done.stdout


@pytest.mark.skipif(shutil.which("setpriv") is None or os.geteuid() != 0,
                    reason="dropping CAP_SYS_NICE from a root process needs util-linux's setpriv")
def test_refused_a_higher_priority_the_rig_says_so_once_and_supervises_all_the_same():
    from workstation.session.rig import raise_priority

    raise_priority()  # as after any earlier test's rig: the probe must not inherit this (the first loaded runs did)
    done = _probe("setpriv", "--bounding-set", "-sys_nice", "--inh-caps", "-sys_nice")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert _nice(done.stdout) == [max(0, os.getpriority(os.PRIO_PROCESS, 0))], done.stdout  # as it was started
    assert done.stdout.count("the workstation runs at normal priority") == 1, done.stdout
    assert "CONNECTED" in done.stdout and "Permission" not in done.stdout


def test_raise_priority_never_lowers_a_thread_that_runs_higher_already():
    from workstation.session.rig import raise_priority

    before = os.getpriority(os.PRIO_PROCESS, 0)
    raise_priority(nice=19)  # a "raise" to the lowest priority there is: nothing changes
    assert os.getpriority(os.PRIO_PROCESS, 0) == before
