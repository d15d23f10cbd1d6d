"""``python -m sweep.recover DAMAGED.db NEW.db``: the runs a damaged SQLite store can still give,
copied into a new store.

A SQLite store that fails ``PRAGMA quick_check`` (a truncated file, pages overwritten or zeroed)
is refused by the sweep and by ``python -m analysis`` with one sentence naming this command.
It creates ``NEW.db`` with the installed MLflow's schema (as a sweep creates its store:
atomically, :func:`sweep.store.open_store`) and copies, table by table, every row SQLite can
still read from ``DAMAGED.db`` (read-only: the damaged file is never written); where a table's
b-tree is broken the scan jumps ahead in rowid to the next part it can read. Rows of a run whose
``runs`` row is lost (its params, metrics, tags) are dropped, so every run in ``NEW.db`` is
whole as far as its rows survived. Prints one line: what was copied. Exit status 2 (one
sentence) when ``NEW.db`` exists or ``DAMAGED.db`` cannot be read at all.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

__all__ = ["main", "recover"]

_JUMP_LIMIT = 1 << 40  # rowids skipped at most past a part of a table that cannot be read


def _rows(src: sqlite3.Connection, table: str, cols: list[str]) -> Iterator[tuple]:
    """Every row of ``table`` SQLite can read, in rowid order, skipping what it cannot."""
    names = ", ".join(f'"{c}"' for c in cols)
    last, jump = 0, 1  # rowids of MLflow's tables start at 1
    while jump <= _JUMP_LIMIT:
        start = last
        try:
            for row in src.execute(
                f'SELECT rowid, {names} FROM "{table}" WHERE rowid > ? ORDER BY rowid', (last,)
            ):
                last, jump = row[0], 1
                yield row[1:]
            return
        except sqlite3.DatabaseError:
            if last == start:  # nothing more read from here: jump further each time
                last, jump = start + jump, jump * 2


def recover(damaged: Path, new: Path) -> dict[str, int]:
    """Copy what can be read from ``damaged`` into a new store ``new``; rows copied per table."""
    from sweep.store import Store, StoreError, open_store

    if new.exists():
        raise StoreError(f"{new} exists; name a new file for the recovered store.")
    try:
        src = sqlite3.connect(f"file:{damaged.absolute()}?mode=ro", uri=True)
        listed = src.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    except sqlite3.Error as exc:
        raise StoreError(
            f"nothing can be read from {damaged} ({exc}): its table list is lost too."
        ) from None
    open_store(Store(uri=f"sqlite:///{new.absolute()}", artifacts=None))  # MLflow's schema
    dst = sqlite3.connect(new)
    copied: dict[str, int] = {}
    try:
        wanted = {r[0] for r in dst.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        for (table,) in listed:
            if table not in wanted or table == "alembic_version":
                continue
            try:
                have = [r[1] for r in src.execute(f'PRAGMA table_info("{table}")')]
            except sqlite3.DatabaseError:
                continue
            cols = [r[1] for r in dst.execute(f'PRAGMA table_info("{table}")') if r[1] in have]
            marks = ", ".join("?" * len(cols))
            names = ", ".join(f'"{c}"' for c in cols)
            n = 0
            for row in _rows(src, table, cols):
                cur = dst.execute(
                    f'INSERT OR IGNORE INTO "{table}" ({names}) VALUES ({marks})', row
                )
                n += cur.rowcount
            copied[table] = n
        # the rows of runs whose own row was lost, and runs of experiments that were lost
        for (table,) in dst.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall():
            cols = {r[1] for r in dst.execute(f'PRAGMA table_info("{table}")')}
            if table != "runs" and "run_uuid" in cols:
                dst.execute(
                    f'DELETE FROM "{table}" WHERE run_uuid NOT IN (SELECT run_uuid FROM runs)'
                )
        dst.execute(
            "DELETE FROM runs WHERE experiment_id NOT IN (SELECT experiment_id FROM experiments)"
        )
        dst.commit()
        copied["runs"] = dst.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    finally:
        dst.close()
        src.close()
    return copied


def main(argv: list[str] | None = None) -> int:
    from sweep.store import StoreError

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m sweep.recover DAMAGED.db NEW.db", file=sys.stderr)
        return 2
    damaged, new = Path(args[0]), Path(args[1])
    try:
        copied = recover(damaged, new)
    except StoreError as exc:
        print(f"recover: {exc}", file=sys.stderr)
        return 2
    print(
        f"recovered {copied.get('runs', 0)} runs ({copied.get('metrics', 0)} metric points, "
        f"{copied.get('params', 0)} params, {copied.get('tags', 0)} tags) from {damaged} into "
        f"{new}; use sqlite:///{new.absolute()} as the store."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
