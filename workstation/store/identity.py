"""Patient identity at rest: the identity columns hold AES-GCM tokens (workstation.keys), never plain text, and
free text written about a patient may not contain the identity it is meant to keep apart."""

from __future__ import annotations

import re
import sqlite3
from datetime import date

from workstation.errors import UserError
from workstation.keys import TOKEN_PREFIX, IdentityCipher
from workstation.store.records import Identity

FIELDS = ("family_name", "given_name", "birth_date", "contact")


def insert_identity(c: sqlite3.Connection, cipher: IdentityCipher, patient_id: int, identity: Identity) -> None:
    """Insert the encrypted identity row. UserError if a name is missing; sqlite3.IntegrityError if one exists."""
    if not identity.family_name.strip() or not identity.given_name.strip():
        raise UserError("An identity needs a family name and a given name.")
    on_file = c.execute("SELECT value FROM meta WHERE key = 'identity_key_id'").fetchone()
    if on_file is None:
        c.execute("INSERT INTO meta (key, value) VALUES ('identity_key_id', ?)", (cipher.key_id,))
    elif on_file[0] != cipher.key_id:
        raise UserError("This workstation's identity key is not the one this clinic store's identities were written "
                        "with, so nothing was saved (a store must not hold identities under two keys). Restore the "
                        "clinic's identity key from its backup into this workstation's keys folder, then try again.")
    plain = {"family_name": identity.family_name.strip(), "given_name": identity.given_name.strip(),
             "birth_date": identity.birth_date.isoformat() if identity.birth_date else "",
             "contact": identity.contact.strip()}
    c.execute("INSERT INTO patient_identity (patient_id, family_name, given_name, birth_date, contact) "
              "VALUES (?, ?, ?, ?, ?)",
              (patient_id, *(cipher.encrypt(plain[f], patient_id=patient_id, field=f) for f in FIELDS)))


def read_identity(conn: sqlite3.Connection, cipher: IdentityCipher, patient_id: int) -> Identity | None:
    row = conn.execute("SELECT family_name, given_name, birth_date, contact FROM patient_identity "
                       "WHERE patient_id = ?", (patient_id,)).fetchone()
    if row is None:
        return None
    plain = {f: cipher.decrypt(v or "", patient_id=patient_id, field=f) for f, v in zip(FIELDS, row, strict=True)}
    born = date.fromisoformat(plain["birth_date"]) if plain["birth_date"] else None
    return Identity(plain["family_name"], plain["given_name"], born, plain["contact"])


def has_plain_identity(conn: sqlite3.Connection) -> bool:
    """True when an earlier version left identity rows in plain text."""
    return conn.execute(f"SELECT 1 FROM patient_identity WHERE family_name NOT LIKE '{TOKEN_PREFIX}%' "
                        "LIMIT 1").fetchone() is not None


def encrypt_plain_rows(conn: sqlite3.Connection, cipher: IdentityCipher) -> int:
    """Encrypt identity rows written in plain text by an earlier version (one transaction); returns how many. Runs
    before the audit trail's triggers exist, so no plain value is copied into the trail; the file is then vacuumed so
    no plain value stays in free pages."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        rows = conn.execute("SELECT patient_id, family_name, given_name, birth_date, contact FROM patient_identity "
                            f"WHERE family_name NOT LIKE '{TOKEN_PREFIX}%'").fetchall()
        for pid, *values in rows:
            tokens = [cipher.encrypt(v or "", patient_id=pid, field=f) for f, v in zip(FIELDS, values, strict=True)]
            conn.execute("UPDATE patient_identity SET family_name = ?, given_name = ?, birth_date = ?, contact = ? "
                         "WHERE patient_id = ?", (*tokens, pid))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    if not rows:
        return 0
    conn.execute("VACUUM")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return len(rows)


MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december")


def _date_forms(d: date) -> list[str]:
    """The ways a birth date is written, lower-case, with separators as typed (numeric forms are also matched on the
    text's digits alone, see identity_in)."""
    month, short = MONTHS[d.month - 1], MONTHS[d.month - 1][:3]
    words = [f"{d.day} {m} {d.year}" for m in (month, short)] + [f"{d.day:02d} {m} {d.year}" for m in (month, short)]
    words += [f"{m} {d.day}, {d.year}" for m in (month, short)] + [f"{m} {d.day} {d.year}" for m in (month, short)]
    return [d.isoformat(), f"{d:%d.%m.%Y}", f"{d:%d/%m/%Y}", f"{d:%m/%d/%Y}", f"{d:%d-%m-%Y}", f"{d:%Y/%m/%d}",
            f"{d:%d.%m.%y}", f"{d:%d/%m/%y}", f"{d:%m/%d/%y}", *words]


def _date_digits(d: date) -> list[str]:
    """Eight-digit forms a date takes when its separators are dropped (year first, day first, month first)."""
    return [f"{d:%Y%m%d}", f"{d:%d%m%Y}", f"{d:%m%d%Y}"]


def identity_in(text: str, identity: Identity, *, compact: bool = False) -> str | None:
    """Which part of `identity` `text` contains, case-insensitively, or None. In prose (notes, reasons) a name counts
    as a whole word, so the patient Ray's note may say "spray"; in a compact identifier (pseudonym, label) with
    `compact=True` a name of 3 or more letters counts anywhere ("JohnSmith", "Smith-John-1970"). The birth date counts
    in its usual written forms."""
    folded = text.casefold()
    for what, name in (("family name", identity.family_name), ("given name", identity.given_name)):
        n = name.casefold().strip()
        if not n:
            continue
        if compact and len(n) >= 3:
            if re.sub(r"[\s\-_.]+", "", n) in re.sub(r"[\s\-_.]+", "", folded):
                return what
        elif re.search(rf"(?<![^\W_]){re.escape(n)}(?![^\W_])", folded):
            return what
    if identity.birth_date is not None:
        spaced = " ".join(folded.replace(",", ", ").split())
        if any(form in spaced or form.replace(" ", "") in spaced.replace(" ", "")
               for form in _date_forms(identity.birth_date)):
            return "birth date"
        digits = re.sub(r"\D", "", folded)
        if any(form in digits for form in _date_digits(identity.birth_date)):
            return "birth date"
    contact = re.sub(r"\D", "", identity.contact or "")
    if len(contact) >= 6 and contact[-6:] in re.sub(r"\D", "", folded):
        return "contact number"
    return None


def refuse_identity(text: str, identity: Identity | None, what: str, *, compact: bool = False) -> None:
    """UserError if `text` (a pseudonym, label, note or reason) contains the patient's identity."""
    if identity is None or not text:
        return
    part = identity_in(text, identity, compact=compact)
    if part is not None:
        raise UserError(f"The {what} contains the patient's {part}; identity is kept only in the identity record. "
                        f"Write it without the {part}.")
