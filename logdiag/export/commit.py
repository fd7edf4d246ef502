"""An export's commit: its part files become visible only once the state file records them.

An export writes its part files under ``_logdiag_tmp/<export id>/`` with a ``.tmp`` suffix
(:class:`Staging`), where no reader looks, each fsync'd. Then one atomic write of the state file
(temporary file, fsync, ``os.replace``, fsync of the directory) records the export: the files'
new watermarks and the export's part files, as ``pending``. That write is the commit. Only then
are the part files renamed into their tables, after which ``pending`` is cleared.

So whatever stops an export (a signal, a full disk, ``kill -9``, a power cut):

- before the commit, its rows are in ``_logdiag_tmp/`` only and the state is the previous one:
  nothing of it is visible, and the next export reads the same inputs again;
- after it, the state accounts for every row of it, and :func:`recover` (run by the next export
  under the lock, or by the interrupted one on its way out) finishes the renames.

Every row a reader can see is one the state accounts for, once. :func:`exclusive` keeps exports
into one directory one at a time (issue 27).
"""

from __future__ import annotations

import io
import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from logdiag.errors import LogdiagError
from logdiag.export import dataset

if TYPE_CHECKING:  # polars is imported when rows are written, not with the CLI
    import polars as pl

STATE_VERSION = 1


class ExportError(LogdiagError):
    """The export directory cannot be written: read-only, full, not a directory, no permission."""


@contextmanager
def writing(root: Path) -> Iterator[None]:
    """Turn a failure to write under ``root`` into one line naming the file and the cause."""
    try:
        yield
    except OSError as exc:
        where = exc.filename if exc.filename is not None else root
        raise ExportError(f"cannot write the export to {where}: {exc.strerror or exc}") from None


@contextmanager
def exclusive(root: Path, notify: Callable[[str], None]) -> Iterator[None]:
    """Hold the export directory's lock; if another export holds it, say so and wait for it.

    The lock is ``fcntl``'s (through ``filelock``): the kernel releases it when its holder dies,
    even of ``kill -9``. It is as good as the file system's locks (not NFS without lockd).
    """
    from filelock import FileLock, Timeout

    lock = FileLock(str(root / dataset.LOCK_FILE))
    with writing(root):
        try:
            lock.acquire(timeout=0)
        except Timeout:
            notify(f"another export into {root} is running; waiting for it to finish")
            lock.acquire()
    try:
        yield
    finally:
        lock.release()


# --- the state file ---------------------------------------------------------------------------

def load_state(root: Path) -> dict[str, Any]:
    """The state file's content, or a new state; a file that is not one is a one-line error."""
    path = root / dataset.STATE_FILE
    empty: dict[str, Any] = {"version": STATE_VERSION, "files": {}, "exports": {}}
    if not path.exists():
        return empty
    try:
        state = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):
        state = None
    if not isinstance(state, dict) or not isinstance(state.get("files"), dict):
        raise ExportError(f"{path} is not a logdiag export state file; remove it to export everything again")
    state.setdefault("exports", {})
    return state


def save_state(root: Path, state: dict[str, Any]) -> None:
    """Write the state atomically and durably: a temporary file, fsync, rename, fsync of the folder."""
    path = root / dataset.STATE_FILE
    temporary = path.with_name(path.name + dataset.TMP_SUFFIX)
    with writing(root):
        try:
            _write_durably(temporary, json.dumps(state, indent=1, sort_keys=True).encode())
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        _fsync_directory(root)


def _write_durably(path: Path, data: bytes | memoryview) -> None:
    try:
        with path.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:  # a full disk's write names no file: name it
        raise OSError(exc.errno, exc.strerror, str(path)) from None


def _fsync_directory(path: Path) -> None:
    """Make the names in a folder durable (a rename is not, until its folder is synced)."""
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


# --- staging and committing -----------------------------------------------------------------

def temporary_path(root: Path, export_id: str, final: Path) -> Path:
    """Where a part file of ``export_id`` waits for its commit."""
    relative = final.relative_to(root)
    return root / dataset.TMP_DIR / export_id / relative.with_name(relative.name + dataset.TMP_SUFFIX)


@dataclass
class Staging:
    """One export's part files, under temporary names until :meth:`commit`.

    Attributes:
        root: the export directory.
        export_id: the export's id (in its part files' names).
        parts: the part files' final paths, in the order written.
    """

    root: Path
    export_id: str
    parts: list[Path] = field(default_factory=list)

    @property
    def folder(self) -> Path:
        return self.root / dataset.TMP_DIR / self.export_id

    def write(self, frame: pl.DataFrame, final: Path, metadata: dict[str, str] | None = None) -> None:
        """Write a part file under its temporary name, durably, with ``metadata`` in its footer's
        key-value metadata.

        polars writes into memory (a part is at most a batch of rows) so that a full disk is an
        ``OSError`` naming the file, not a polars error halfway through one.
        """
        buffer = io.BytesIO()
        frame.write_parquet(buffer, compression="zstd", metadata=metadata)
        temporary = temporary_path(self.root, self.export_id, final)
        with writing(self.root):
            temporary.parent.mkdir(parents=True, exist_ok=True)
            _write_durably(temporary, buffer.getbuffer())
        self.parts.append(final)

    def discard(self, keep: int) -> None:
        """Forget the part files written after the first ``keep``."""
        for final in self.parts[keep:]:
            temporary_path(self.root, self.export_id, final).unlink(missing_ok=True)
        del self.parts[keep:]

    def commit(self, state: dict[str, Any], rows: dict[str, int]) -> None:
        """Record the part files in ``state`` (with the watermarks the caller put there), write
        it, then move the files into place."""
        with writing(self.root):
            # Every folder from a part file up to the export directory, deepest first: after a
            # power cut, the state must not name a file whose folder entry was lost.
            folders = {folder for p in self.parts for folder in temporary_path(self.root, self.export_id, p).parents
                       if folder.is_relative_to(self.root)}
            for folder in sorted(folders, key=lambda f: len(f.parts), reverse=True):
                _fsync_directory(folder)
            for folder in {final.parent for final in self.parts}:
                folder.mkdir(parents=True, exist_ok=True)
        relative = [str(final.relative_to(self.root)) for final in self.parts]
        state["pending"] = {"export": self.export_id, "parts": relative}
        state["exports"][self.export_id] = {
            "committed": datetime.now(timezone.utc).isoformat(timespec="seconds"), "parts": relative, "rows": rows,
            "schema_version": dataset.SCHEMA_VERSION,
        }
        save_state(self.root, state)  # the commit
        finish(self.root, state)

    def committed(self) -> bool:
        """Whether the state file on disk records this export (read again: the in-memory state may
        be ahead of, or behind, the disk when a signal struck)."""
        try:
            return self.export_id in load_state(self.root)["exports"]
        except (OSError, LogdiagError):
            return False

    def abort(self) -> int:
        """Remove the export's temporary files (it was not committed); how many part files went."""
        removed = _remove_folder(self.folder)
        _remove_if_empty(self.root / dataset.TMP_DIR)
        return removed


def finish(root: Path, state: dict[str, Any]) -> int:
    """Finish the renames of the committed export ``state`` names as pending; how many were left."""
    pending = state.get("pending")
    if not pending:
        return 0
    export_id, renamed = pending["export"], 0
    with writing(root):
        folders: set[Path] = set()
        for relative in pending["parts"]:
            final = root / relative
            temporary = temporary_path(root, export_id, final)
            if temporary.exists():
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(temporary, final)
                renamed += 1
            folders.update(f for f in final.parents if f.is_relative_to(root))  # new date= folders too
        for folder in sorted(folders, key=lambda f: len(f.parts), reverse=True):
            _fsync_directory(folder)
    del state["pending"]
    save_state(root, state)
    _remove_folder(root / dataset.TMP_DIR / export_id)
    _remove_if_empty(root / dataset.TMP_DIR)
    return renamed


def recover(root: Path, state: dict[str, Any]) -> list[str]:
    """Finish what interrupted exports left (under the lock): the renames of a committed one, and
    the removal of uncommitted ones' temporary files. Says what was done, for the user."""
    notes = []
    pending = state.get("pending")
    if pending:
        renamed = finish(root, state)
        notes.append(f"finished the commit of an interrupted export ({pending['export']}): "
                     f"{renamed} part files moved into place")
    stale = root / dataset.TMP_DIR
    if stale.is_dir():
        removed = 0
        with writing(root):
            for folder in stale.iterdir():
                removed += _remove_folder(folder) if folder.is_dir() else _unlink(folder)
            _remove_if_empty(stale)
        if removed:
            notes.append(f"removed {removed} part files of an interrupted export that was never committed")
    return notes


def uncommitted(root: Path, state: dict[str, Any] | None) -> tuple[list[Path], int]:
    """For readers: the pending export's part files still under their temporary names (committed:
    to be read), and how many other temporary part files there are (not committed: ignored)."""
    pending = (state or {}).get("pending") or {"export": None, "parts": []}
    committed = []
    for relative in pending["parts"]:
        final = root / relative
        temporary = temporary_path(root, pending["export"], final)
        if not final.exists() and temporary.exists():
            committed.append(temporary)
    stale = root / dataset.TMP_DIR
    others = 0
    if stale.is_dir():
        others = sum(1 for p in stale.rglob("*" + dataset.TMP_SUFFIX) if p not in committed)
    return committed, others


def _remove_folder(folder: Path) -> int:
    if not folder.exists():
        return 0
    count = sum(1 for _ in folder.rglob("*" + dataset.TMP_SUFFIX))
    shutil.rmtree(folder)
    return count


def _unlink(path: Path) -> int:
    path.unlink(missing_ok=True)
    return 1


def _remove_if_empty(folder: Path) -> None:
    with suppress(OSError):  # not empty: another export's, or a file someone put there
        folder.rmdir()
