"""The shadow swap: dbt builds into shadow schemas (marts__shadow ...); after a VACUUM
(ANALYZE) their relations move into the live schemas in ONE transaction, so readers see the
old tables or the new ones, never a mix. A stopped build's shadow schemas are dropped."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg import sql

from loaders.cutover.catalog import (
    TABLE_KINDS,
    dependent_views,
    relation_exists,
    relations,
    shadow_schemas,
)
from loaders.errors import UserError

SWAP_LOCK_TIMEOUT = "60s"  # how long the swap waits for readers' locks before giving up


@dataclass(frozen=True)
class Swapped:
    moved: int  # relations moved into the live schemas
    recreated: list[str]  # views of other schemas recreated on the new relations
    missing: list[str]  # views that no longer fit the new relations (left out)


def drop_shadows(conn: psycopg.Connection) -> list[str]:
    """Drop what a shadow build left (an earlier migration that stopped, or this one)."""
    dropped = []
    for shadow, _ in shadow_schemas(conn):
        conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(shadow)))
        dropped.append(shadow)
    return dropped


def vacuum_shadows(conn: psycopg.Connection) -> None:
    """VACUUM (ANALYZE) every table and materialized view of the shadow schemas (conn in
    autocommit). Otherwise autovacuum starts on the new tables and the swap's locks wait for
    it until deadlock_timeout cancels it, once per table; readers' first queries on the new
    tables also get statistics and an all-visible map."""
    shadows = [shadow for shadow, _ in shadow_schemas(conn)]
    for r in relations(conn, shadows, (*TABLE_KINDS, "m")):
        conn.execute(sql.SQL("vacuum (analyze) {}").format(r.ident))


def swap_in(conn: psycopg.Connection, inside: Callable[[], None] | None = None) -> Swapped:
    """Move every relation of the shadow schemas into its live schema, in ONE transaction:
    a reader sees the old customers, deliveries ... or the new ones, never a mix, and
    never a missing table (it waits for the locks, at most SWAP_LOCK_TIMEOUT, then sees
    the new tables). The live schemas themselves are kept (their privileges, and what
    else lives in them, such as validation's history tables). Views of other schemas on
    the replaced relations (a saved query of Mary's) are recreated on the new ones.
    `inside` runs last in the transaction, to commit a mark with the swap (on `conn`)."""
    with conn.transaction():
        conn.execute(sql.SQL("set local lock_timeout = {}").format(sql.Literal(SWAP_LOCK_TIMEOUT)))
        pairs = shadow_schemas(conn)
        if not pairs:
            raise UserError("the dbt build made no shadow schema: nothing to swap in")
        live_of = dict(pairs)
        moving = relations(conn, list(live_of))
        live = {(r.schema, r.name): r for r in relations(conn, list(live_of.values()))}
        replaced = [
            live[(live_of[m.schema], m.name)] for m in moving if (live_of[m.schema], m.name) in live
        ]
        views = dependent_views(conn, [r.oid for r in replaced])
        for schema in live_of.values():
            conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
        for r in replaced:
            conn.execute(sql.SQL("drop {} if exists {} cascade").format(r.what, r.ident))
        for m in moving:
            conn.execute(
                sql.SQL("alter {} {} set schema {}").format(
                    m.what, m.ident, sql.Identifier(live_of[m.schema])
                )
            )
        for shadow in live_of:
            conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(shadow)))
        recreated, missing = [], []
        for v in views:
            if relation_exists(conn, v.name):
                continue  # not dropped: it did not depend on a replaced relation after all
            try:
                with conn.transaction():  # a savepoint: a view that no longer fits is left out
                    conn.execute(v.statement)
                recreated.append(v.name)
            except psycopg.Error:
                missing.append(v.name)
        if inside is not None:
            inside()
    return Swapped(len(moving), recreated, missing)
