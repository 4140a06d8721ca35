"""The database roles of a PostgreSQL clinic store (docs/deployment.md): who owns it, and what the workstations may do.

- `cicatrix_owner` owns the schema, every table and the trail's trigger functions (SECURITY DEFINER, so they write
  the trail with the owner's rights). Only the owner (or a superuser) changes the schema, makes or drops triggers;
  the clinic's administrator opens the store as the owner after installing a new program version (the upgrade).
- `cicatrix_app` is the account the workstations sign in with: SELECT, INSERT, UPDATE, DELETE on the clinical
  tables; on `audit_trail`, `area_changes` and `plan_overrides` (audit records) INSERT and SELECT only (no UPDATE,
  DELETE or TRUNCATE), SELECT on `alembic_version`; it
  cannot create objects, drop or disable triggers, or replace the trail's functions.

`setup_roles` is run once by an account that may create roles (a superuser, or one with CREATEROLE owning the
database): `main.py store setup-roles --url …`. Passwords are set by the administrator (ALTER ROLE … PASSWORD), never
by the program."""

from __future__ import annotations

from workstation.errors import UserError
from workstation.store.db import DatabaseError, Db
from workstation.store.trail import APPEND_ONLY

OWNER = "cicatrix_owner"
APP = "cicatrix_app"
CLINICAL_RIGHTS = "SELECT, INSERT, UPDATE, DELETE"
TRAIL_RIGHTS = "SELECT, INSERT"


def _owned_functions(db: Db) -> list[str]:
    """`name(args)` of the functions of the store's schema that no extension owns (the trail's, the leases')."""
    return [f"{r[0]}({r[1]})" for r in db.execute(
        "SELECT p.proname, pg_get_function_identity_arguments(p.oid) FROM pg_proc p "
        "JOIN pg_namespace s ON s.oid = p.pronamespace WHERE s.nspname = current_schema() AND NOT EXISTS "
        "(SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')")]


def apply_roles(db: Db) -> list[str]:
    """Create the two roles if missing, hand the schema's objects to the owner and grant the application its rights.
    `db`: a store at the head revision with its triggers in place, connected as an account that may create roles.
    Returns what was done, as lines for the administrator. Raises UserError when the account may not."""
    done = []
    try:
        db.begin()
        for role in (OWNER, APP):
            if db.execute("SELECT 1 FROM pg_roles WHERE rolname = ?", (role,)).fetchone() is None:
                db.execute(f"CREATE ROLE {role} LOGIN")
                done.append(f"created the role {role} (set its password: ALTER ROLE {role} PASSWORD '…')")
        schema = db.execute("SELECT current_schema()").fetchone()[0]
        db.execute(f"ALTER SCHEMA {schema} OWNER TO {OWNER}")
        tables = db.tables()
        for table in tables:
            db.execute(f"ALTER TABLE {table} OWNER TO {OWNER}")  # its sequences follow it
        for function in _owned_functions(db):
            db.execute(f"ALTER FUNCTION {function} OWNER TO {OWNER}")
        db.execute(f"REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC")
        db.execute(f"GRANT USAGE ON SCHEMA {schema} TO {APP}")
        db.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {APP}")
        for table in tables:
            rights = TRAIL_RIGHTS if table in APPEND_ONLY else "SELECT" if table == "alembic_version" else \
                CLINICAL_RIGHTS
            db.execute(f"GRANT {rights} ON {table} TO {APP}")
        db.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {APP}")
        # Tables and sequences a later revision adds (made by the owner) are the application's to use too.
        db.execute(f"ALTER DEFAULT PRIVILEGES FOR ROLE {OWNER} IN SCHEMA {schema} GRANT {CLINICAL_RIGHTS} ON TABLES "
                   f"TO {APP}")
        db.execute(f"ALTER DEFAULT PRIVILEGES FOR ROLE {OWNER} IN SCHEMA {schema} GRANT USAGE, SELECT ON SEQUENCES "
                   f"TO {APP}")
        db.commit()
    except DatabaseError as exc:
        db.rollback()
        text = str(getattr(exc, "orig", exc)).lower()
        if "permission denied" in text or "must be" in text:
            raise UserError("This account may not create roles or hand the store to them; run `store setup-roles` "
                            "as the server's superuser (or an account with CREATEROLE that owns the database).") \
                from exc
        raise UserError("The database server refused to set up the roles; nothing was changed. Tell the clinic's "
                        "administrator.") from exc
    done.append(f"{OWNER} owns the schema, {len(tables)} tables and the trail's functions; {APP} may read and "
                "write the clinical tables and only add to the audit trail")
    return done
