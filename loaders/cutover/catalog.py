"""What the database holds: schemas and relations, each table's row count and checksum, the
views that depend on a set of relations, and the shadow schemas a migration builds into."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql

# What a migration changes and a rollback restores: the raw layer and every schema dbt builds
# (dbt_project.yml), so that after a rollback staging, intermediate and marts agree with raw.
# The validation schema is not among them: its history survives a rollback.
TARGET_SCHEMAS = ("raw", "staging", "intermediate", "marts", "reference")
# dbt var schema_suffix: where migrate builds (macros/generate_schema_name)
SHADOW_SUFFIX = "__shadow"

TABLE_KINDS = ("r", "p")
VIEW_KINDS = ("v", "m")
RELKIND = {"r": "table", "p": "table", "v": "view", "m": "materialized view"}

RELATIONS = """
select c.oid, n.nspname, c.relname, c.relkind
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where c.relkind::text = any(%(kinds)s::text[])
    and (%(schemas)s::text[] is null or n.nspname = any(%(schemas)s::text[]))
    and (%(oids)s::oid[] is null or c.oid = any(%(oids)s::oid[]))
order by n.nspname, c.relname
"""

# The relations whose rewrite rules (views, materialized views) read `oids`, transitively.
DEPENDENTS = """
with recursive deps(oid) as (
    select distinct r.ev_class
    from pg_depend d
    join pg_rewrite r on r.oid = d.objid and d.classid = 'pg_rewrite'::regclass
    where d.refobjid = any(%(oids)s::oid[]) and r.ev_class <> d.refobjid
    union
    select r.ev_class
    from deps
    join pg_depend d on d.refobjid = deps.oid and d.classid = 'pg_rewrite'::regclass
    join pg_rewrite r on r.oid = d.objid
    where r.ev_class <> deps.oid
)
select oid from deps where oid <> all(%(oids)s::oid[])
"""


@dataclass(frozen=True)
class Relation:
    """A table, view or materialized view."""

    oid: int
    schema: str
    name: str
    kind: str  # pg_class.relkind

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)

    @property
    def what(self) -> sql.SQL:
        """Its kind as DDL writes it: `drop {what} ...`, `alter {what} ...`."""
        return sql.SQL(RELKIND[self.kind])


@dataclass(frozen=True)
class View:
    """A view to recreate after the relations it reads were dropped."""

    name: str  # schema.name
    kind: str  # 'v' or 'm'
    statement: str  # create [materialized] view ... as ...


def relations(
    conn: psycopg.Connection,
    schemas: Sequence[str] | None = None,
    kinds: Sequence[str] = TABLE_KINDS + VIEW_KINDS,
    oids: Sequence[int] | None = None,
) -> list[Relation]:
    """The relations of `kinds` in `schemas` (None: every schema), or among `oids`, by name."""
    params = {
        "kinds": list(kinds),
        "schemas": None if schemas is None else list(schemas),
        "oids": None if oids is None else list(oids),
    }
    return [Relation(*row) for row in conn.execute(RELATIONS, params).fetchall()]


def relation_exists(conn: psycopg.Connection, name: str) -> bool:
    """Whether `schema.name` names a relation (False for a missing schema too)."""
    return conn.execute("select to_regclass(%s) is not null", (name,)).fetchone()[0]


def relation_oids(conn: psycopg.Connection, schemas: Sequence[str]) -> list[int]:
    return [r.oid for r in relations(conn, schemas)]


def existing_schemas(conn: psycopg.Connection, schemas: Sequence[str]) -> list[str]:
    rows = conn.execute(
        "select nspname from pg_namespace where nspname = any(%s) order by nspname",
        (list(schemas),),
    ).fetchall()
    return [r[0] for r in rows]


def table_counts(conn: psycopg.Connection, schemas: Sequence[str]) -> dict[str, int]:
    """{"schema.table": rows} for every table of `schemas`."""
    counts = {}
    for t in relations(conn, schemas, TABLE_KINDS):
        q = sql.SQL("select count(*) from {}").format(t.ident)
        counts[t.qualified] = int(conn.execute(q).fetchone()[0])
    return counts


def table_checksums(conn: psycopg.Connection, schemas: Sequence[str]) -> dict[str, str]:
    """{"schema.table": checksum of its rows} ('' for an empty table): the md5 of the sorted
    md5s of its rows as text, so that the aggregate holds 32 bytes per row whatever the row's
    width, and equal tables give equal sums whatever their physical order."""
    sums = {}
    for t in relations(conn, schemas, TABLE_KINDS):
        q = sql.SQL(
            "select coalesce(md5(string_agg(h, '' order by h)), '')"
            " from (select md5(t::text) as h from {} as t) as rows"
        ).format(t.ident)
        sums[t.qualified] = conn.execute(q).fetchone()[0]
    return sums


def dependent_views(conn: psycopg.Connection, oids: Sequence[int]) -> list[View]:
    """Views and materialized views that depend (transitively) on the relations `oids` and
    are not among them, in creation order, with the statements that recreate them.
    Dropping those relations with cascade drops these."""
    with conn.transaction():
        # an empty search_path: every name in the definitions comes schema-qualified
        conn.execute("select set_config('search_path', '', true)")
        found = [r[0] for r in conn.execute(DEPENDENTS, {"oids": list(oids)}).fetchall()]
        views = sorted(relations(conn, kinds=VIEW_KINDS, oids=found), key=lambda v: v.oid)
        definitions = dict(
            conn.execute(
                "select oid, pg_get_viewdef(oid, true) from unnest(%s::oid[]) as oid",
                ([v.oid for v in views],),
            ).fetchall()
        )
    return [
        View(
            v.qualified,
            v.kind,
            f"create {RELKIND[v.kind]} {v.ident.as_string(conn)} as"
            f" {definitions[v.oid].rstrip(';')}",
        )
        for v in views
    ]


def shadow_schemas(conn: psycopg.Connection) -> list[tuple[str, str]]:
    """(shadow schema, live schema) for every schema a shadow build made (marts__shadow ...)."""
    pattern = "%" + SHADOW_SUFFIX.replace("_", "\\_")
    found = conn.execute(
        "select nspname from pg_namespace where nspname like %s order by 1", (pattern,)
    ).fetchall()
    return [(r[0], r[0][: -len(SHADOW_SUFFIX)]) for r in found]
