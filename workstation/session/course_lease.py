"""The lease a running session holds on its course (issue 17; the rows and rules are workstation/store/leases.py).

`CourseLease.take` is called by the visit service when treatment starts, before anything is recorded: it refuses a
plan computed before another room saved a session of the course, takes the course's lease (LeaseRefused names who
holds it), and, when it took over the lease of a start whose process died (or stopped renewing for
leases.CRASH_TIMEOUT_S), closes that start's session as the journal closes a crashed one. A thread with its own store
connection renews the lease every leases.RENEW_INTERVAL_S (never the GUI thread, and whatever a step or a pause takes);
`release` ends it at every ending of the session. The visit service takes it with defer=True: checked here (a read),
written by journal_start in the session start's transaction and released by journal_end in the end's, so a visit is
two commits (docs/records.md).
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
    """A course's lease held by this process, renewed on its own thread until `release`. A deferred lease (`take`
    with defer=True) is checked but not yet written: the session's start writes it (journal_start), and the
    session's end releases it (journal_end), each in the session's own transaction."""

    def __init__(self, store: Any, lease: Lease, *, renew_interval_s: float = RENEW_INTERVAL_S,
                 written: bool = True) -> None:
        self.lease = lease
        self.lost = False
        """True once a renewal found the lease no longer ours (taken over after the crash timeout)."""
        self.written = written
        """Whether the lease row is in the store (False: deferred until the session's start writes it)."""
        self._store = store
        self._stop = threading.Event()
        self._ending = False  # the session's end is releasing it: a failed renewal then is no takeover
        self._released_by_end = False
        self._renew_interval_s = renew_interval_s
        self._thread: threading.Thread | None = None
        if written:
            self._start_renewing()

    def _start_renewing(self) -> None:
        store = self._store
        self._thread = threading.Thread(target=self._renew_loop, args=(store.path, store.role, store.actor,
                                                                       self._renew_interval_s),
                                        name=f"lease-course-{self.lease.course_id}", daemon=True)
        self._thread.start()

    @classmethod
    def take(cls, store: Any, course_id: int, account: str, *, plan_version: int | None = None,
             room: str | None = None, renew_interval_s: float = RENEW_INTERVAL_S, defer: bool = False) -> CourseLease:
        """Take the course's lease for this process (see the module). Raises UserError when the plan is stale
        (`plan_version`, the course version the plan was computed from, is not the course's), and
        leases.LeaseRefused when another start holds the lease. With `defer`, a lease that is free because it was
        released (or never taken) is only checked here, and written by journal_start in the session's own
        transaction (one commit per start, not two); a lease left by a start that crashed is taken at once, as
        without `defer`, so that start's session is closed before anything else."""
        if plan_version is not None:
            store.check_plan_version(course_id, plan_version)  # before anything is recorded or leased
        room = room or room_name()
        if defer:
            mine, before = store.propose_lease(course_id, room=room, account=account, process=process_token())
            if before is None or before.released_at is not None:
                return cls(store, mine, renew_interval_s=renew_interval_s, written=False)
        lease, replaced = store.take_lease(course_id, room=room, account=account, process=process_token())
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
                        if self._ending:  # released by the session's end, not taken over
                            return
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

    def written_by_start(self) -> None:
        """The session's start wrote the lease (journal_start): renew it from now on."""
        if not self.written:
            self.written = True
            self._start_renewing()

    def ending(self, released: bool | None = None) -> None:
        """The session's end is releasing the lease in its own transaction (journal_end): `released` None before
        that transaction, then whether it released the lease (release() then writes nothing more)."""
        self._ending = released is None or released
        self._released_by_end = bool(released)

    def release(self) -> None:
        """Stop renewing and release the lease (idempotent; nothing to write when the session's end released it or
        the lease was never written). Runs on the thread that owns the visit's store."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if not self.written or self._released_by_end:
            return
        try:
            self._store.release_lease(self.lease.course_id, self.lease.holder)
        except UserError as exc:  # the store is held: the lease then expires after the crash timeout
            log.warning("course %s: lease not released (%s)", self.lease.course_id, exc)
