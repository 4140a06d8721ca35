"""Patient identity at rest: the identity columns hold AES-GCM tokens (workstation.keys), never plain text, and
free text written about a patient may not contain the identity it is meant to keep apart."""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from typing import TYPE_CHECKING

from workstation.errors import UserError
from workstation.keys import TOKEN_PREFIX, IdentityCipher
from workstation.store.records import Identity

if TYPE_CHECKING:
    from workstation.store.db import Db

FIELDS = ("family_name", "given_name", "birth_date", "contact")


def insert_identity(c: Db, cipher: IdentityCipher, patient_id: int, identity: Identity) -> None:
    """Insert the encrypted identity row. UserError if a name is missing; IntegrityError (workstation.store.db) if one exists."""
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


def read_identity(conn: Db, cipher: IdentityCipher, patient_id: int) -> Identity | None:
    row = conn.execute("SELECT family_name, given_name, birth_date, contact FROM patient_identity "
                       "WHERE patient_id = ?", (patient_id,)).fetchone()
    if row is None:
        return None
    plain = {f: cipher.decrypt(v or "", patient_id=patient_id, field=f) for f, v in zip(FIELDS, row, strict=True)}
    born = date.fromisoformat(plain["birth_date"]) if plain["birth_date"] else None
    return Identity(plain["family_name"], plain["given_name"], born, plain["contact"])


def has_plain_identity(conn: Db) -> bool:
    """True when an earlier version left identity rows in plain text."""
    return conn.execute(f"SELECT 1 FROM patient_identity WHERE family_name NOT LIKE '{TOKEN_PREFIX}%' "
                        "LIMIT 1").fetchone() is not None


def encrypt_plain_rows(conn: Db, cipher: IdentityCipher) -> int:
    """Encrypt identity rows written in plain text by an earlier version (one transaction); returns how many. Runs
    before the audit trail's triggers exist, so no plain value is copied into the trail; the file is then vacuumed so
    no plain value stays in free pages."""
    conn.begin()
    try:
        rows = conn.execute("SELECT patient_id, family_name, given_name, birth_date, contact FROM patient_identity "
                            f"WHERE family_name NOT LIKE '{TOKEN_PREFIX}%'").fetchall()
        for pid, *values in rows:
            tokens = [cipher.encrypt(v or "", patient_id=pid, field=f) for f, v in zip(FIELDS, values, strict=True)]
            conn.execute("UPDATE patient_identity SET family_name = ?, given_name = ?, birth_date = ?, contact = ? "
                         "WHERE patient_id = ?", (*tokens, pid))
        conn.commit()
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise
    if not rows:
        return 0
    if conn.dialect == "sqlite":  # (PostgreSQL: old row versions go by its autovacuum)
        conn.raw.execute("VACUUM")  # outside any transaction: on the driver's connection, in autocommit mode
        conn.raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return len(rows)


MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december")


_ORDINAL = re.compile(r"(\d+)(?:st|nd|rd|th)\b")


def _fold(text: str) -> str:
    """Lower case without accents ("Smíth" -> "smith"), for comparing names as a person reads them."""
    return "".join(ch for ch in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(ch))


def _month(token: str) -> int | None:
    if token.isdigit():
        return int(token) if 1 <= int(token) <= 12 else None
    for i, name in enumerate(MONTHS, start=1):
        if token == name or (len(token) >= 3 and name.startswith(token)):
            return i
    return None


def _has_date(text: str, d: date) -> bool:
    """True when `text` writes the date `d`: day, month (number or name) and year (4 or 2 digits) as three
    neighbouring tokens in day-month-year, month-day-year or year-month-day order, whatever the separators and
    ordinals ("4th May 1970", "1970-5-4", "04-May-70"), or as one 8-digit number ("05041970")."""
    tokens = re.findall(r"[a-z]+|\d+", _ORDINAL.sub(r"\1", _fold(text)))
    year = {str(d.year), f"{d.year % 100:02d}"}
    for i in range(len(tokens) - 2):
        a, b, c = tokens[i:i + 3]
        for day, month, yr in ((a, b, c), (b, a, c), (c, b, a)):
            if day.isdigit() and int(day) == d.day and _month(month) == d.month and yr in year:
                return True
    return any(t in (f"{d:%Y%m%d}", f"{d:%d%m%Y}", f"{d:%m%d%Y}") for t in tokens)


def identity_in(text: str, identity: Identity, *, compact: bool = False) -> str | None:
    """Which part of `identity` `text` contains, case-insensitively, or None. In prose (notes, reasons) a name counts
    as a whole word, so the patient Ray's note may say "spray"; in a compact identifier (pseudonym, label) with
    `compact=True` a name of 3 or more letters counts anywhere ("JohnSmith", "Smith-John-1970"). The birth date counts
    in its usual written forms."""
    folded = _fold(text)
    for what, name in (("family name", identity.family_name), ("given name", identity.given_name)):
        n = _fold(name).strip()
        if not n:
            continue
        if compact and len(n) >= 3:
            if re.sub(r"[\s\-_.]+", "", n) in re.sub(r"[\s\-_.]+", "", folded):
                return what
        elif re.search(rf"(?<![^\W_]){re.escape(n)}(?![^\W_])", folded):
            return what
    if identity.birth_date is not None and _has_date(text, identity.birth_date):
        return "birth date"
    contact = re.sub(r"\D", "", identity.contact or "")
    runs = re.findall(r"\d+", re.sub(r"(?<=\d)[ \-](?=\d)", "", text))  # a number as written, spaces and dashes in it
    if len(contact) >= 6 and any(contact[-6:] in run for run in runs):
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
