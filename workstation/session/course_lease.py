"""The lease a running session holds on its course (issue 17; the rows and rules are workstation/store/leases.py).

`CourseLease.take` is called by the visit service when treatment starts, before anything is recorded: it refuses a
plan computed before another room saved a session of the course, takes the course's lease (LeaseRefused names who
holds it), and, when it took over the lease of a start whose process died (or stopped renewing for
leases.CRASH_TIMEOUT_S), closes that start's session as the journal closes a crashed one. A thread with its own store
connection renews the lease every leases.RENEW_INTERVAL_S (never the GUI thread, and whatever a step or a pause takes);
`release` ends it at every ending of the session.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from workstation.errors import UserError
from workstation.session.journal import close_crashed_sessions, process_token
from workstation.store.leases import RENEW_INTERVAL_S, Lease, this_host
from workstation.words import first_upper

log = logging.getLogger(__name__)


def room_name() -> str:
    """This workstation's room: the setting clinic.room (workstation.settings), by default the computer's name.
    Raises UserError when the settings file is invalid."""
    from workstation.settings import load_settings

    return str(load_settings()["clinic.room"] or this_host())


class CourseLease:
    """A course's lease held by this process, renewed on its own thread until `release`."""

    def __init__(self, store: Any, lease: Lease, *, renew_interval_s: float = RENEW_INTERVAL_S) -> None:
        self.lease = lease
        self.lost = False
        """True once a renewal found the lease no longer ours (taken over after the crash timeout)."""
        self._store = store
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew_loop, args=(store.path, store.role, store.actor,
                                                                       renew_interval_s),
                                        name=f"lease-course-{lease.course_id}", daemon=True)
        self._thread.start()

    @classmethod
    def take(cls, store: Any, course_id: int, account: str, *, plan_version: int | None = None,
             room: str | None = None, renew_interval_s: float = RENEW_INTERVAL_S) -> CourseLease:
        """Take the course's lease for this process (see the module). Raises UserError when the plan is stale
        (`plan_version`, the course version the plan was computed from, is not the course's), and
        leases.LeaseRefused when another start holds the lease."""
        if plan_version is not None:
            store.check_plan_version(course_id, plan_version)  # before anything is recorded or leased
        lease, replaced = store.take_lease(course_id, room=room or room_name(), account=account,
                                           process=process_token())
        if replaced is not None:
            log.info("course %s: lease of %s (%s) taken over; closing its session as crashed", course_id,
                     replaced.room, replaced.host)
            try:
                closed = [c for c in close_crashed_sessions(store) if store.course_of_session(c.session_id) == course_id]
            except BaseException:
                store.release_lease(course_id, lease.holder)
                raise
            if closed and plan_version is not None:  # the plan did not count what the recording shows was given
                store.release_lease(course_id, lease.holder)
                raise UserError(f"{first_upper(closed[0].label)}, in {replaced.room}, was "
                                f"{closed[0].note}; it is now closed as crashed. Nothing "
                                "was started: plan the visit again (re-plan) so the plan counts that session.")
        return cls(store, lease, renew_interval_s=renew_interval_s)

    def _renew_loop(self, path: Any, role: str, actor: str, interval_s: float) -> None:
        from workstation.store import ClinicStore

        store = None
        try:
            while not self._stop.wait(interval_s):
                try:
                    if store is None:
                        store = ClinicStore.open(path, training=role == "training")
                        store.actor = actor
                    if not store.renew_lease(self.lease.course_id, self.lease.holder):
                        self.lost = True
                        log.warning("course %s: the lease was taken over by another start after this one stopped "
                                    "renewing it", self.lease.course_id)
                        return
                except UserError as exc:  # a busy store: try again at the next interval
                    log.info("course %s: lease not renewed this time (%s)", self.lease.course_id, exc)
                except Exception:  # noqa: BLE001 - the thread goes on; the lease expires if this repeats
                    log.exception("course %s: lease renewal failed", self.lease.course_id)
        finally:
            if store is not None:
                store.close()

    def release(self) -> None:
        """Stop renewing and release the lease (idempotent). Runs on the thread that owns the visit's store."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join()
        try:
            self._store.release_lease(self.lease.course_id, self.lease.holder)
        except UserError as exc:  # the store is held: the lease then expires after the crash timeout
            log.warning("course %s: lease not released (%s)", self.lease.course_id, exc)
