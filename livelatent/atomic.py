"""Writing files so that a file that was there before is never left half-written.

Everything livelatent writes for a performer (renders, sets, checkpoints, maps, caches) is
first written to a temporary file beside its target and renamed over it once complete; a crash
or an error in between leaves the old file, and the temporary one is removed. The temporary
file gets the permissions an ordinary new file would (``tempfile`` makes it private, 0600).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import WriteError

__all__ = ["PendingFile", "atomic_path", "fsync_dir", "new_folder_mode", "file_in_the_way"]


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()      # read once, at import: os.umask can only be read by setting it


def new_folder_mode() -> int:
    """The permissions ``mkdir`` would give a new folder (``mkdtemp`` gives 0700)."""
    return 0o777 & ~_UMASK


class PendingFile:
    """A temporary file beside ``path`` (same folder, same suffix) that becomes ``path`` on
    :meth:`commit` and disappears on :meth:`discard`, with the folders made for it (when empty:
    a failed export or render into a new folder left that folder behind, empty). Several files
    made in one new folder: only the first made it, so it is discarded last."""

    def __init__(self, path, *, suffix: str | None = None):
        self.path = Path(path)
        try:
            folder = self.path.is_dir()  # found now, not when the work is done and renamed
        except OSError as exc:           # (a name too long, a folder that cannot be read...)
            raise WriteError(f"cannot write {self.path}: {_reason(exc)}") from exc
        if folder:
            raise WriteError(f"cannot write {self.path}: it is a folder")
        suffix = self.path.suffix if suffix is None else suffix
        self._made = []                  # folders made for it, deepest first
        try:
            folder = self.path.parent
            while not folder.exists() and folder != folder.parent:
                self._made.append(folder)
                folder = folder.parent
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # (the name shortened in the temporary's: a name near the system's limit, 255 bytes,
            # is allowed, and the temporary's dot and random letters took it past)
            short = os.fsdecode(os.fsencode(self.path.stem)[:100]).rstrip("\udc80\udcff")
            fd, tmp = tempfile.mkstemp(prefix=f".{short}.", suffix=suffix, dir=self.path.parent)
        except OSError as exc:
            self._remove_made()
            link = _link_to_nowhere(self.path.parent)
            reason = _reason(exc) if link is None else \
                f"{link} is a symbolic link to nothing (or to itself)"
            raise WriteError(f"cannot write {self.path}: {reason}") from exc
        try:
            os.fchmod(fd, 0o666 & ~_UMASK)
        finally:
            os.close(fd)
        self.tmp = Path(tmp)

    def commit(self, *, durable: bool = True) -> Path:
        """Rename the finished temporary file over ``path``; ``durable``: fsync it and its
        folder first, so it survives a power cut."""
        try:
            if durable:
                with open(self.tmp, "rb") as f:
                    os.fsync(f.fileno())
            os.replace(self.tmp, self.path)
        except OSError as exc:
            self.discard()
            raise WriteError(f"cannot write {self.path}: {_reason(exc)}") from exc
        except BaseException:
            self.discard()
            raise
        if durable:
            fsync_dir(self.path.parent)
        return self.path

    def discard(self) -> None:
        self.tmp.unlink(missing_ok=True)
        self._remove_made()

    def _remove_made(self) -> None:
        for folder in self._made:
            try:
                folder.rmdir()
            except OSError:              # (something else was put there meanwhile: it stays)
                break


def file_in_the_way(folder) -> Path | None:
    """The file standing where ``folder``, or a folder above it, would have to be: checked
    before a long job that will write there. None when the folder can be made."""
    folder = Path(folder)
    for above in (folder, *folder.parents):
        if above.exists():
            return None if above.is_dir() else above
    return None


def _link_to_nowhere(folder: Path) -> Path | None:
    """The folder, or one above it, that is a symbolic link leading nowhere (a loop too)."""
    for place in (folder, *folder.parents):
        if place.is_symlink() and not os.path.exists(place):
            return place
    return None


def _reason(exc: OSError) -> str:
    """An OS error in words, without the path it names (the message names it already)."""
    if isinstance(exc, FileExistsError) or isinstance(exc, NotADirectoryError):
        return "a file is in the way of the folder it goes in"
    return exc.strerror or str(exc)


@contextlib.contextmanager
def atomic_path(path, *, suffix: str | None = None, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write; it replaces ``path`` when the block ends without error.

    >>> with atomic_path("renders/take.wav") as tmp:     # doctest: +SKIP
    ...     soundfile.write(tmp, audio, 44100)
    """
    pending = PendingFile(path, suffix=suffix)
    try:
        yield pending.tmp
    except BaseException:
        pending.discard()
        raise
    pending.commit(durable=durable)


def fsync_dir(folder: Path) -> None:
    """Make a folder's entries durable too (a new or renamed file survives a power cut)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
