"""Results database: ASE's database layer (``ase.db``), SQLite by default.

Why ``ase.db`` (and not SQLAlchemy): it is already a dependency, stores the structure of every
row as a real ``Atoms`` object (users browse a campaign with ``ase db results.db`` or
``ase gui results.db``, and query it with ``ase.db.connect(...).select("property=energy")``),
keeps arrays in each row's ``data``, and speaks SQLite, PostgreSQL and MySQL, so a shared
campaign can live on a server (``--db postgresql://...``).

One row per (structure, property, potential, parameters), identified by ``work_key`` (a
SHA-256 of the structure fingerprint, property name, potential identity and canonical JSON
parameters). Key-value pairs (searchable): ``work_key``, ``label``, ``property``,
``potential``, ``potential_hash``, ``params_hash``, ``status`` (``done``/``failed``),
``campaign``, ``mlip_props_version``, ``host``, ``batch``, ``elapsed_s`` and the scalar fields of
the result (prefixed ``r_`` where they clash with ASE's reserved keys). ``data`` holds the full
result dictionary (``data["result"]``), the parameters, the error text and the structure source.

Guarantees: a batch of rows is written in one transaction (``with db:``), so a process killed
at any moment leaves either the whole batch or none of it; on SQLite a partial UNIQUE index on
``work_key`` makes a duplicate row impossible at the database level as well.

Integrity: an existing SQLite file is checked with ``PRAGMA quick_check`` when it is opened; a
file that is not a database, or a damaged one, raises :class:`DatabaseDamagedError` naming the
file and the way to recover. Reading (:func:`readable_rows`, :func:`to_dataframe`) skips rows that
no longer decode and names them instead of failing whole.
"""
from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import ase.db
from ase import Atoms
from ase.db.core import reserved_keys

__all__ = ["ResultsDB", "RowRecord", "DatabaseDamagedError", "check_sqlite_integrity", "to_dataframe",
           "decode_params", "readable_rows"]

_UNIQUE_INDEX = (
    "CREATE UNIQUE INDEX IF NOT EXISTS mlip_props_work_key ON text_key_values(value) WHERE key = 'work_key'"
)
_CLAIMS_TABLE = ("CREATE TABLE IF NOT EXISTS mlip_props_claims "
                 "(work_key TEXT PRIMARY KEY, owner TEXT NOT NULL, expires REAL NOT NULL)")
_META_KEYS = ("work_key", "label", "property", "potential", "potential_hash", "params_hash", "status",
              "campaign", "mlip_props_version", "host", "batch", "elapsed_s", "source")


@dataclass
class RowRecord:
    """What the runner writes for one work item."""

    work_key: str
    label: str
    property: str
    params: dict[str, Any]
    status: str  # "done" | "failed"
    atoms: Atoms | None
    result: dict[str, Any] | None = None
    error: str | None = None
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


def _kv_name(k: str) -> str:
    return f"r_{k}" if (k in reserved_keys or k in _META_KEYS) else k


def _scalar_kvps(result: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in result.items():
        if isinstance(v, bool):
            out[_kv_name(k)] = v
        elif isinstance(v, (int, float)) and v == v:
            out[_kv_name(k)] = v
        elif isinstance(v, str) and len(v) < 100:
            out[_kv_name(k)] = v
    return {k: v for k, v in out.items() if k.isidentifier()}


def claim_owner() -> str:
    """The claim owner of this process: ``"host:pid:start time (ns)"``."""
    return f"{socket.gethostname()}:{os.getpid()}:{time.time_ns()}"


def claim_owner_alive(owner: str) -> bool:
    """False when ``owner`` (see :func:`claim_owner`) names a process of this host that has gone;
    True otherwise (another host's process cannot be checked: its claim lasts until it expires)."""
    host, _, rest = owner.partition(":")
    pid = rest.split(":", 1)[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


class DatabaseDamagedError(ValueError):
    """A results file that is not an SQLite database, or one that fails SQLite's integrity check."""


def check_sqlite_integrity(path: str | Path) -> None:
    """``DatabaseDamagedError`` naming ``path`` and the recovery when the existing file at ``path``
    is not an SQLite database or fails ``PRAGMA quick_check`` (cheap: no index cross-check)."""
    recovery = (f"export the rows that still read back (`mlip-props export {path} --out rows.csv`) and run the "
                "campaign again into a new database file (`--db new.db`): the rows that are missing are recomputed")
    try:
        with sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True, timeout=60) as con:
            problems = [r[0] for r in con.execute("PRAGMA quick_check")]
    except sqlite3.DatabaseError as exc:
        raise DatabaseDamagedError(f"results database {str(path)!r} cannot be read as SQLite ({exc}); "
                                   f"if it was a results database, {recovery}") from exc
    if problems != ["ok"]:
        shown = "; ".join(problems[:3]) + (f" (and {len(problems) - 3} more)" if len(problems) > 3 else "")
        raise DatabaseDamagedError(f"results database {str(path)!r} is damaged (SQLite quick_check: {shown}); "
                                   f"{recovery}")


def decode_params(text: str) -> dict[str, Any]:
    return json.loads(text) if text else {}


@contextmanager
def _creation_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on the database file while its tables are created: ASE checks for its
    tables and creates them in several statements, so processes opening a new file at once (two
    runners, Dask workers) would otherwise find them half made. ``flock`` is released when the
    process ends, however it ends, so no stale lock can block a later run (unlike ASE's lock
    file); on systems without ``fcntl`` the creation is not serialised."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    # an existing file is locked read-only (reports read databases they may not write); a new one
    # is created empty, which SQLite takes for a new database
    with open(path, "rb" if path.exists() else "ab") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class ResultsDB:
    """A campaign results database (any ``ase.db`` URL or file; ``.db`` = SQLite).

    An existing SQLite file is integrity-checked first (see :func:`check_sqlite_integrity`) unless
    ``check_integrity`` is false, which reading for recovery (``report``, ``export``) uses."""

    def __init__(self, url: str | Path, check_integrity: bool = True):
        self.url = str(url)
        self.is_sqlite = "://" not in self.url or self.url.startswith("sqlite")
        if self.is_sqlite:
            Path(self.url).parent.mkdir(parents=True, exist_ok=True)
            path = Path(self.url)
            if check_integrity and path.is_file() and path.stat().st_size > 0:
                check_sqlite_integrity(path)
        # no ASE lock file: a process killed with SIGKILL would leave it behind and block every
        # later run; SQLite's own locking serialises writers.
        self.db = ase.db.connect(self.url, type="db" if self.is_sqlite else "extract_from_name", append=True,
                                 use_lock_file=False)
        if self.is_sqlite:
            try:
                self._ensure_schema()
            except sqlite3.DatabaseError:
                if check_integrity:
                    raise
                # reading a damaged file for recovery: what still reads back is read row by row

    def _ensure_schema(self) -> None:
        with _creation_lock(Path(self.url)):  # ASE creates its tables in several statements
            self.db.count()  # creates the ASE tables
            with sqlite3.connect(self.url, timeout=60) as con:
                con.execute(_UNIQUE_INDEX)
                con.execute(_CLAIMS_TABLE)

    # ------------------------------------------------------------------ claims (sharing work)
    def claim(self, keys: Iterable[str], owner: str, ttl_s: float, retry_failed: bool = False) -> list[str]:
        """Claim the ``keys`` that are neither written (``done``, or ``failed`` unless
        ``retry_failed``) nor claimed by another owner whose claim is still valid; returns them, in
        order. A claim lasts ``ttl_s`` seconds; a claim whose owner (``"host:pid:..."``, see
        :func:`claim_owner`) is a process of this host that no longer exists is void at once, so a
        runner killed before writing holds its rows until ``ttl_s`` on other hosts only. One
        immediate transaction, so two runners never claim the same key. Non-SQLite: every key."""
        keys = list(keys)
        if not self.is_sqlite or not keys:
            return keys
        now = time.time()
        con = sqlite3.connect(self.url, timeout=60, isolation_level=None)
        try:
            con.execute("BEGIN IMMEDIATE")
            con.execute("DELETE FROM mlip_props_claims WHERE expires < ?", (now,))
            taken: set[str] = set()
            for i in range(0, len(keys), 500):
                chunk = keys[i:i + 500]
                qs = ",".join("?" * len(chunk))
                for key, holder in con.execute(
                        f"SELECT work_key, owner FROM mlip_props_claims WHERE owner != ? AND work_key IN ({qs})",
                        (owner, *chunk)):
                    if claim_owner_alive(holder):
                        taken.add(key)
                if retry_failed:
                    sql = ("SELECT t.value FROM text_key_values t JOIN text_key_values s ON t.id = s.id "
                           f"WHERE t.key = 'work_key' AND t.value IN ({qs}) AND s.key = 'status' AND s.value = 'done'")
                else:
                    sql = f"SELECT value FROM text_key_values WHERE key = 'work_key' AND value IN ({qs})"
                taken |= {r[0] for r in con.execute(sql, chunk)}
            mine = [k for k in keys if k not in taken]
            con.executemany("INSERT OR REPLACE INTO mlip_props_claims VALUES (?, ?, ?)",
                            [(k, owner, now + ttl_s) for k in mine])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            con.close()
        return mine

    def release(self, keys: Iterable[str], owner: str) -> None:
        """Drop ``owner``'s claims on ``keys`` (after their rows are written)."""
        keys = list(keys)
        if not self.is_sqlite or not keys:
            return
        with sqlite3.connect(self.url, timeout=60) as con:
            con.executemany("DELETE FROM mlip_props_claims WHERE work_key = ? AND owner = ?",
                            [(k, owner) for k in keys])

    # ------------------------------------------------------------------ reading
    def keys(self, status: str | None = None) -> set[str]:
        """Work keys present (optionally only those with ``status``)."""
        if self.is_sqlite:
            sql = "SELECT value FROM text_key_values WHERE key = 'work_key'"
            args: tuple = ()
            if status:
                sql = ("SELECT t.value FROM text_key_values t JOIN text_key_values s ON t.id = s.id "
                       "WHERE t.key = 'work_key' AND s.key = 'status' AND s.value = ?")
                args = (status,)
            with sqlite3.connect(self.url, timeout=60) as con:
                return {r[0] for r in con.execute(sql, args)}
        sel = f"status={status}" if status else None
        return {row.work_key for row in self.db.select(sel, include_data=False) if "work_key" in row}

    def keys_among(self, keys: Iterable[str], status: str | None = None) -> set[str]:
        """Which of ``keys`` are present (optionally with ``status``); one indexed query on SQLite."""
        keys = list(keys)
        if not self.is_sqlite:
            return self.keys(status) & set(keys)
        out: set[str] = set()
        with sqlite3.connect(self.url, timeout=60) as con:
            for i in range(0, len(keys), 500):
                chunk = keys[i:i + 500]
                qs = ",".join("?" * len(chunk))
                if status:
                    sql = ("SELECT t.value FROM text_key_values t JOIN text_key_values s ON t.id = s.id "
                           f"WHERE t.key = 'work_key' AND t.value IN ({qs}) AND s.key = 'status' AND s.value = ?")
                    out |= {r[0] for r in con.execute(sql, (*chunk, status))}
                else:
                    sql = f"SELECT value FROM text_key_values WHERE key = 'work_key' AND value IN ({qs})"
                    out |= {r[0] for r in con.execute(sql, chunk)}
        return out

    def count(self, **selection: Any) -> int:
        return self.db.count(**selection)

    def rows(self, selection: Any = None, **kw: Any) -> Iterable[Any]:
        return self.db.select(selection, **kw)

    def ids_for_keys(self, keys: Iterable[str]) -> list[int]:
        keys = list(keys)
        ids = []
        for k in keys:
            ids.extend(r.id for r in self.db.select(work_key=k, include_data=False))
        return ids

    # ------------------------------------------------------------------ writing
    def write_batch(self, records: list[RowRecord], replace_failed: bool = False) -> int:
        """Write all ``records`` in ONE transaction; returns the number written.

        Keys already present are skipped (never duplicated); with ``replace_failed`` a failed
        row with the same key is replaced inside the same transaction.
        """
        if not records:
            return 0
        batch_keys = [r.work_key for r in records]
        present = self.keys_among(batch_keys)
        failed = self.keys_among(batch_keys, "failed") if replace_failed else set()
        to_delete = [r.work_key for r in records if r.work_key in failed]
        new = [r for r in records if r.work_key not in present or r.work_key in failed]
        if not new:
            return 0
        del_ids = self.ids_for_keys(to_delete) if to_delete else []
        try:
            with self.db:
                if del_ids:  # inside this transaction (ase's delete() would commit and VACUUM)
                    self.db._delete(self.db.connection.cursor(), del_ids)
                for r in new:
                    kvp = {
                        "work_key": r.work_key, "label": r.label[:200], "property": r.property,
                        "params_hash": r.meta.get("params_hash", ""), "status": r.status,
                        "source": r.source[:200],
                    }
                    for k in ("potential", "potential_hash", "campaign", "mlip_props_version", "host", "batch", "elapsed_s"):
                        if r.meta.get(k) is not None:
                            kvp[k] = r.meta[k]
                    if r.result:
                        kvp.update(_scalar_kvps(r.result))
                    data = {"params": json.dumps(r.params, sort_keys=True), "result": r.result or {},
                            "error": r.error or "", "provenance": {k: v for k, v in r.meta.items()}}
                    self.db.write(r.atoms if r.atoms is not None else Atoms(), key_value_pairs=kvp, data=data)
        except sqlite3.IntegrityError:
            # another writer committed some of these keys first: keep theirs, write the rest
            present = self.keys_among(r.work_key for r in new)
            rest = [r for r in new if r.work_key not in present]
            if len(rest) == len(new):
                raise
            return self.write_batch(rest, replace_failed=False)
        return len(new)

    def to_dataframe(self, selection: Any = None, expand_results: bool = True):
        return to_dataframe(self, selection, expand_results)


def readable_rows(rdb: ResultsDB, selection: Any = None, unreadable: list[str] | None = None) -> list[Any]:
    """The rows of ``selection`` whose key-value pairs and data decode; each row that does not (a
    damaged page) is left out and named (``"row <id>: <error>"``) in ``unreadable`` when a list is
    given."""
    bad: list[str] = []

    def decoded(row: Any) -> bool:
        try:
            row.data  # noqa: B018 - ase decodes the data lazily: force it here
            return True
        except Exception as exc:  # noqa: BLE001
            bad.append(f"row {row.id}: {type(exc).__name__}: {exc}")
            return False

    try:
        rows = [row for row in rdb.db.select(selection) if decoded(row)]
    except Exception:  # noqa: BLE001 - a row does not even list: read again by id to isolate it
        bad.clear()
        try:
            ids = [r.id for r in rdb.db.select(selection, include_data=False)]
        except Exception:  # noqa: BLE001 - the selection itself does not read back: every row
            if not rdb.is_sqlite:
                raise
            ids = _sqlite_row_ids(rdb.url)
        rows = []
        for i in ids:
            try:
                row = rdb.db.get(id=i)
            except Exception as exc:  # noqa: BLE001
                bad.append(f"row {i}: {type(exc).__name__}: {exc}")
                continue
            if decoded(row):
                rows.append(row)
    if unreadable is not None:
        unreadable.extend(bad)
    return rows


def _sqlite_row_ids(url: str) -> list[int]:
    """Row ids of an SQLite results file, read as plainly as possible (a damaged page can break
    an ordered scan while the primary-key list still reads); every id up to the largest as a
    last resort."""
    with sqlite3.connect(url, timeout=60) as con:
        for sql in ("SELECT id FROM systems", "SELECT max(id) FROM systems", "SELECT seq FROM sqlite_sequence"):
            try:
                got = [r[0] for r in con.execute(sql) if r[0] is not None]
            except sqlite3.DatabaseError:
                continue
            return sorted(got) if sql == "SELECT id FROM systems" else list(range(1, max(got, default=0) + 1))
    return []


def to_dataframe(db: ResultsDB | str | Path, selection: Any = None, expand_results: bool = True,
                 unreadable: list[str] | None = None):
    """The results as a pandas ``DataFrame``: one row per database row.

    Columns: ``id``, ``label``, ``formula``, ``property``, ``status``, ``error``, ``potential``,
    ``potential_hash``, ``params`` (JSON text), ``mlip_props_version``, ``host``, ``ctime``
    (ASE time, years since 2000 — see ``ase.db.core.now``) and, with ``expand_results``, every
    scalar field of the result under its own name (units in the names, e.g.
    ``energy_eV_per_atom``); list-valued fields are kept as Python lists. Rows that no longer
    decode are left out and named in ``unreadable`` (see :func:`readable_rows`).
    """
    import pandas as pd

    rdb = db if isinstance(db, ResultsDB) else ResultsDB(db, check_integrity=False)
    recs = []
    for row in readable_rows(rdb, selection, unreadable):
        d = {
            "id": row.id, "label": row.get("label"), "formula": row.formula, "property": row.get("property"),
            "status": row.get("status"), "error": row.data.get("error", ""), "potential": row.get("potential"),
            "potential_hash": row.get("potential_hash"), "params": row.data.get("params", "{}"),
            "mlip_props_version": row.get("mlip_props_version"), "host": row.get("host"),
            "ctime": row.ctime, "work_key": row.get("work_key"), "source": row.get("source"),
        }
        if expand_results:
            for k, v in (row.data.get("result") or {}).items():
                if k not in d:
                    d[k] = v
        recs.append(d)
    return pd.DataFrame.from_records(recs)
