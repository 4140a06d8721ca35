"""Which process holds something: a token naming a process ("pid:start-ticks") and whether it still runs. The session
journal marks a session in progress with its process, and a course's lease names the process that holds it; both ask
here whether that process is gone (workstation.session.journal, workstation.store.leases)."""

from __future__ import annotations

import os
from pathlib import Path


def _start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux /proc), None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def process_token(pid: int | None = None) -> str:
    """"pid:start-ticks" of a process (this one by default): a pid reused by another process does not match."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}:{_start_ticks(pid) or '?'}"


def process_alive(token: str | None) -> bool:
    """Whether the process a token names is still running (and is the same process, where /proc tells)."""
    if not token:
        return False
    pid_text, _, ticks = token.partition(":")
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if pid == os.getpid():
        return ticks in ("?", _start_ticks(pid) or "?")
    now = _start_ticks(pid)
    if now is not None:
        return ticks == "?" or now == ticks
    if Path("/proc/self/stat").is_file():  # /proc works here, and has no such process
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OverflowError:  # no pid this system can have
        return False
    except PermissionError:
        return True
    return True
