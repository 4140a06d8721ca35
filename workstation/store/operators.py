"""Operator accounts in the clinic store: who may do what, and proof that they are who they say.

Passwords are hashed with Argon2id (argon2-cffi's PasswordHasher, its RFC 9106 low-memory profile defaults), a
memory-hard KDF, so a copied store does not give the passwords away cheaply. Roles, and what each may do:

| role | may |
|---|---|
| clinician | run clinical mode (treat patients) |
| trainer | run simulation |
| engineer | replay recordings and use the read-only tools |
| administrator | manage accounts and the clinic's protocols; also everything above, to bootstrap a clinic |
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from workstation.errors import UserError
from workstation.terminal import quoted

ROLES = ("clinician", "trainer", "engineer", "administrator")
MAY = {
    "clinician": frozenset({"clinical"}),
    "trainer": frozenset({"simulation"}),
    "engineer": frozenset({"replay"}),
    "administrator": frozenset({"accounts", "protocols", "clinical", "simulation", "replay"}),
}
ACCOUNT = re.compile(r"^[a-z][a-z0-9._-]{1,31}$")
ACCOUNT_RULE = "2–32 lower-case letters, digits, '.', '_' or '-', starting with a letter"
"""ACCOUNT in words: every account name, and a training scenario's operator (workstation.session.scenario)."""
MIN_PASSWORD = 10
_hasher = PasswordHasher()


@dataclass(frozen=True)
class Operator:
    id: int
    account: str
    display_name: str
    role: str
    active: bool
    created_at: str
    created_by: str

    def may(self, action: str) -> bool:
        """True when this account's role allows `action` (one of: clinical, simulation, replay, accounts,
        protocols)."""
        return self.active and action in MAY[self.role]


def _row(r) -> Operator:  # noqa: ANN001 - a sqlite3 row
    return Operator(r[0], r[1], r[2], r[3], bool(r[4]), r[5], r[6])


_COLS = "id, account, display_name, role, active, created_at, created_by"


def operators(store) -> list[Operator]:  # noqa: ANN001 - ClinicStore (import cycle)
    return [_row(r) for r in store._conn.execute(f"SELECT {_COLS} FROM operators ORDER BY account")]


def find(store, account: str) -> Operator | None:  # noqa: ANN001
    r = store._conn.execute(f"SELECT {_COLS} FROM operators WHERE account = ?", (account,)).fetchone()
    return _row(r) if r else None


def add(store, account: str, display_name: str, role: str, password: str, *, created_by: str,  # noqa: ANN001
        first: bool = False) -> Operator:
    """Create an account. UserError (in words) for a malformed account name, an unknown role, a short password or
    an account that exists. `first=True` creates the clinic's first account (an administrator, with nobody signed
    in): refused if any account exists by then, checked under the write lock so two first starts cannot both win."""
    if not ACCOUNT.match(account):
        raise UserError(f"Account {quoted(account)} is not valid: {ACCOUNT_RULE} (e.g. dr-a).")
    if role not in ROLES:
        raise UserError(f"Role {quoted(role)} is unknown; use one of {', '.join(ROLES)}.")
    if not display_name.strip():
        raise UserError("Give the account holder's display name (e.g. Dr A. Example).")
    if len(password) < MIN_PASSWORD:
        raise UserError(f"The password needs at least {MIN_PASSWORD} characters.")
    if first and role != "administrator":
        raise UserError("The clinic's first account must be an administrator.")
    with store.transaction(f"account {account} created") as c:
        if first and c.execute("SELECT 1 FROM operators LIMIT 1").fetchone():
            raise UserError("The clinic has an account already (created a moment ago): sign in, or ask its "
                            "administrator to create yours.")
        if c.execute("SELECT 1 FROM operators WHERE account = ?", (account,)).fetchone():
            raise UserError(f"The account {account} exists already; choose another name.")
        c.execute("INSERT INTO operators (account, display_name, role, password_hash, active, created_at, created_by) "
                  "VALUES (?, ?, ?, ?, 1, ?, ?)", (account, display_name.strip(), role, _hasher.hash(password),
                                                   datetime.now(UTC).isoformat(timespec="seconds"), created_by))
    found = find(store, account)
    assert found is not None
    return found


def set_active(store, account: str, active: bool, *, reason: str) -> Operator:  # noqa: ANN001
    if find(store, account) is None:
        raise UserError(f"There is no account {account}.")
    if not reason.strip():
        raise UserError("Say why the account is " + ("enabled" if active else "disabled") + ".")
    if find(store, account).active == active:  # type: ignore[union-attr]
        raise UserError(f"The account {account} is {'active' if active else 'disabled'} already; nothing changed.")
    if not active:
        admins = [o for o in operators(store) if o.role == "administrator" and o.active and o.account != account]
        target = find(store, account)
        if target is not None and target.role == "administrator" and not admins:
            raise UserError(f"{account} is the last active administrator; create another administrator first.")
    with store.transaction(reason.strip()) as c:
        c.execute("UPDATE operators SET active = ? WHERE account = ?", (int(active), account))
    found = find(store, account)
    assert found is not None
    return found


def authenticate(store, account: str, password: str) -> Operator:  # noqa: ANN001
    """The account, when the password is right and the account active. UserError otherwise, with one sentence for
    an unknown account and a wrong password alike (it does not tell which accounts exist)."""
    r = store._conn.execute(f"SELECT {_COLS}, password_hash FROM operators WHERE account = ?", (account,)).fetchone()
    wrong = UserError("The account or the password is wrong; try again.")
    if r is None:
        _hasher.hash(password)  # the same work either way, so timing does not tell which accounts exist
        raise wrong
    try:
        _hasher.verify(r[7], password)
    except VerifyMismatchError as exc:
        raise wrong from exc
    except (VerificationError, InvalidHashError) as exc:
        raise UserError(f"The password record of {account} is damaged; an administrator must reset it.") from exc
    op = _row(r)
    from workstation.store.trail import differs_from_trail

    if differs_from_trail(store._conn, "operators", op.id, {"account": op.account, "role": op.role,
                                                          "active": int(op.active)}, ("account", "role", "active")):
        raise UserError(f"The account {account} was changed around the program (its record differs from the audit "
                        "trail): it cannot sign in. Tell the clinic's administrator; `trail verify` shows what "
                        "changed.")
    if not op.active:
        raise UserError(f"The account {account} is disabled; ask an administrator.")
    if _hasher.check_needs_rehash(r[7]):
        with store.transaction("password hash parameters updated") as c:
            c.execute("UPDATE operators SET password_hash = ? WHERE id = ?", (_hasher.hash(password), op.id))
    return op


def sign_in(store, account: str, password: str, action: str) -> Operator:  # noqa: ANN001
    """Authenticate and check the role allows `action`; from then on the store's writes are attributed to it."""
    op = authenticate(store, account, password)
    if not op.may(action):
        what = {"accounts": "manage accounts", "protocols": "manage the clinic's protocols"}.get(action,
                                                                                              f"use {action} mode")
        article = "an" if op.role[0] in "aeiou" else "a"
        raise UserError(f"The account {account} is {article} {op.role} account, which may not {what}; ask an "
                        "administrator.")
    store.actor = op.account
    store.account = op.account
    return op
