"""The lease tests' helpers (both ways of starting): a course to treat, and two real room processes racing for it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import date, timedelta

from workstation.protocols import load_library
from workstation.store import ClinicStore, Identity

ROOMS = ("room 1", "room 2")


def race_two_rooms(racer_code: str, store_url: str, course_ids: list[int]) -> list[dict]:
    """Run `racer_code` (a `python -c` program taking: store URL, start time, room name, JSON course ids, and printing
    one JSON object as its last line) as room 1 and room 2 at once; return their objects in that order.

    Both start at the same wall-clock instant, 3 s ahead, so both have imported and opened the store by then.
    Raises AssertionError (with the child's stderr) if a room's process fails."""
    start = time.time() + 3.0
    procs = [subprocess.Popen([sys.executable, "-c", racer_code, store_url, repr(start), room, json.dumps(course_ids)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for room in ROOMS]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def lease_course(store: ClinicStore, pseudonym: str = "P-0042", identity: Identity | None = None):
    """A patient with one facial area on a hypopigmented-scar light course started 30 days ago: (course, area)."""
    p = store.create_patient(pseudonym, identity)
    area = store.add_area(p.id, "left cheek", "face", "hypopigmented_scar", 3.5, "III")
    c = store.create_course(p.id, load_library().get("hypopigmented-scar-light"), [area.id],
                            date.today() - timedelta(days=30))
    return c, area
