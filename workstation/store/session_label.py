"""How a stored session is named in every sentence a user reads (issue 17's fresh tester, item 6): its count in its
course, "session 3 of the course", with the store's id as its record number, "(record no. 17)"
(workstation.words.session_named formats it; this module counts). The count is the plan's (dose engine:
session_number): the sessions of the course before it, by date then id, that delivered something, plus one."""

from __future__ import annotations

from typing import Any

from workstation.words import session_named

_COUNT_SQL = ("SELECT COUNT(*) FROM sessions s, sessions me WHERE me.id = ? AND s.course_id = me.course_id AND "
              "(s.session_date < me.session_date OR (s.session_date = me.session_date AND s.id < me.id)) AND "
              "EXISTS (SELECT 1 FROM treatments t WHERE t.session_id = s.id)")
_EXISTS_SQL = "SELECT 1 FROM sessions WHERE id = ?"


def session_label(conn: Any, session_id: int) -> str:
    """"session 3 of the course (record no. 17)" for the session `session_id` through `conn` (the store's
    connection, or the one of a transaction in progress: anything whose execute(sql, params) has fetchone()), or
    "session record no. 17" when the store holds no such session."""
    if conn.execute(_EXISTS_SQL, (int(session_id),)).fetchone() is None:
        return session_named(int(session_id))
    before = conn.execute(_COUNT_SQL, (int(session_id),)).fetchone()[0]
    return session_named(int(session_id), int(before) + 1)
