"""The label folder the human teacher and the label server share: queries, clips, answers.

Kept apart from :mod:`feedbackgym.feedback.human.teacher` (which asks the queries) and
:mod:`feedbackgym.feedback.human.server` (which shows them to people) so that both build on it
and neither imports the other's module to reach it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import secrets
import stat
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from feedbackgym.errors import ConfigError
from feedbackgym.feedback.base import A_PREFERRED, B_PREFERRED, EQUAL, SKIPPED

#: What an annotator may answer, and the label each answer becomes.
ANSWERS: dict[str, float] = {"a": A_PREFERRED, "b": B_PREFERRED, "equal": EQUAL, "skip": SKIPPED}
#: Query ids are hex digests: nothing else can name a file in the queue.
QUERY_ID = re.compile(r"[0-9a-f]{24}")
#: Annotator names: short and printable (they end up in answer files and logs).
ANNOTATOR_NAME = re.compile(r"[A-Za-z0-9_.-]{1,40}")
#: Seconds after its last change during which a folder's modification time is not trusted to
#: mark a complete listing: file systems keep directory times in coarse ticks (ext4 a few ms,
#: NFS and FAT up to 2 s), so a file added in the same tick as the listing leaves the time as
#: it was. Within this window the folder is listed again at every look (names only: cheap).
MTIME_GRANULARITY = 2.0


def unwritable_reason(folder: str | Path) -> str | None:
    """Why this process cannot create files in ``folder`` (or, where it does not exist yet,
    create it: its nearest existing parent is checked), or None when it can. Writes nothing."""
    probe = Path(folder)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        return f"{str(probe)!r} is not a folder"
    if os.access(probe, os.W_OK | os.X_OK):
        return None
    with contextlib.suppress(OSError):
        if os.statvfs(probe).f_flag & os.ST_RDONLY:
            return f"{str(probe)!r} is on a read-only file system"
    return f"{str(probe)!r} is not writable by this user"


def check_writable(root: str | Path, subfolders: tuple[str, ...] = ()) -> None:
    """Refuse (:class:`ConfigError`, one line) a label folder ``root`` (and its
    ``subfolders``) this process could not write its queries, clips or answers in, before
    anything is written."""
    for folder in (Path(root), *(Path(root) / name for name in subfolders)):
        reason = unwritable_reason(folder)
        if reason is not None:
            raise ConfigError(
                f"label folder {str(root)!r} cannot be written: {reason} (the teacher writes "
                "queries and clips there, the label server answers)"
            )


def _atomic_write(path: Path, data: bytes, exclusive: bool = False) -> bool:
    """Write ``data`` to ``path`` durably: a temporary file, fsync, then rename (or, with
    ``exclusive``, a hard link that fails when ``path`` exists: the first writer wins).
    Returns False when ``exclusive`` and ``path`` already existed."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if exclusive:
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
        else:
            os.replace(tmp, path)
            tmp = ""
    finally:
        if tmp:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the new name itself survives a crash
    finally:
        os.close(dir_fd)
    return True


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class LabelQueue:
    """A folder of preference queries and their answers: all the teacher and the label server
    share, so they can run as two processes and either can restart.

    Layout: ``queries/<id>.json`` (a pending query: when it was asked, its clips' frame rate;
    never rewards), ``clips/<id>-a.gif`` and ``clips/<id>-b.gif``, ``answers/<id>.json`` (the
    answer, its annotator and time, or a withdrawal), ``annotators.json`` (annotator names and
    the SHA-256 of their tokens; mode 0600) and ``feedback.jsonl`` (the teacher's log of
    answered batches, segments and rewards included: what ``feedbackgym calibrate`` reads).
    Every file is written to a temporary name, fsynced and renamed; an answer is created only
    if none exists (a hard link), so the first answer wins and a query is answered once.

    :meth:`open_queries` keeps an index (every query id seen and when it was asked; the ids
    answered), so a look at the folder lists names and reads only the query files it has not
    seen: scans stay short however many answered queries a long run leaves behind. One lock
    serialises the looks of the server's threads.

    :param root: the folder (created with its subfolders; refused in one line where it cannot
        be written).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        try:
            for name in ("queries", "clips", "answers"):
                (self.root / name).mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError(
                f"label folder {str(root)!r} cannot be created: {err.strerror}"
            ) from None
        check_writable(root, ("queries", "clips", "answers"))
        self._lock = threading.Lock()
        self._created: dict[str, float] = {}  # every query id indexed -> when it was asked
        self._open: list[tuple[float, str]] = []  # indexed queries not seen answered, by age
        self._queries_listed: int | None = None  # mtime of queries/ at a trusted full listing
        self._answers_listed: int | None = None  # the same for answers/
        self._answered: set[str] = set()

    # A checkpoint pickles the human teacher and its queue: the lock and the index are rebuilt.
    def __getstate__(self) -> dict[str, Any]:
        return {"root": self.root}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["root"])  # type: ignore[misc]

    # ----- queries ----------------------------------------------------------------------
    def publish(self, qid: str, clip_a: bytes, clip_b: bytes, meta: dict[str, Any]) -> None:
        """Make query ``qid`` visible: clips first, then the query file naming them."""
        _atomic_write(self.root / "clips" / f"{qid}-a.gif", clip_a)
        _atomic_write(self.root / "clips" / f"{qid}-b.gif", clip_b)
        record = {"id": qid, "created": time.time(), **meta}
        _atomic_write(self.root / "queries" / f"{qid}.json", json.dumps(record).encode())

    def is_query(self, qid: str) -> bool:
        """Whether ``qid`` is a well-formed id of a published query."""
        return bool(QUERY_ID.fullmatch(qid)) and (self.root / "queries" / f"{qid}.json").exists()

    def query(self, qid: str) -> dict[str, Any]:
        """The published record of query ``qid``."""
        return json.loads((self.root / "queries" / f"{qid}.json").read_text())

    def read_clip(self, qid: str, side: str) -> bytes | None:
        """The GIF of side ``"a"`` or ``"b"`` of ``qid``; None for anything else, and for
        anything but a regular file at ``clips/<id>-<side>.gif`` itself: a symlink there (or
        a ``clips`` folder that is one) is refused, so nobody who can write the folder can
        make the server read another file for them. Below the label folder (which may itself
        be reached through a link: its path is the operator's), the file is opened without
        following links, one folder at a time, so it cannot be swapped for a link between a
        check and the read."""
        if side not in ("a", "b") or not QUERY_ID.fullmatch(qid):
            return None
        flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
        fds: list[int] = []
        try:
            fds.append(os.open(self.root, flags | os.O_DIRECTORY))
            flags |= os.O_NOFOLLOW
            fds.append(os.open("clips", flags | os.O_DIRECTORY, dir_fd=fds[-1]))
            fds.append(os.open(f"{qid}-{side}.gif", flags | os.O_NONBLOCK, dir_fd=fds[-1]))
            if not stat.S_ISREG(os.fstat(fds[-1]).st_mode):
                return None
            with os.fdopen(fds.pop(), "rb") as handle:
                return handle.read()
        except OSError as err:
            if err.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR, errno.EACCES):
                return None
            raise
        finally:
            for fd in fds:
                os.close(fd)

    def open_queries(self) -> list[str]:
        """Ids of the published queries not yet answered or withdrawn, oldest first.

        A folder is listed again only when its modification time changed since a complete
        listing (or changed within :data:`MTIME_GRANULARITY` seconds of it, when a file added
        in the same clock tick would leave the time unchanged); a listing reads only the
        query files not indexed yet. The looks of several threads are serialised, so an older
        listing never replaces a newer one. A listing a moment stale can only offer a query
        just answered, which :meth:`answer` refuses."""
        with self._lock:
            self._look_at_queries()
            self._look_at_answers()
            return [qid for _, qid in self._open]

    def _look_at_queries(self) -> None:
        folder = self.root / "queries"
        mtime = folder.stat().st_mtime_ns
        if mtime == self._queries_listed:
            return
        started = time.time_ns()
        present = {n[:-5] for n in os.listdir(folder) if n.endswith(".json")}
        complete = True
        for qid in present - self._created.keys():
            if not QUERY_ID.fullmatch(qid):
                continue
            try:
                self._created[qid] = float(
                    json.loads((folder / f"{qid}.json").read_text())["created"]
                )
            except (OSError, ValueError, KeyError, TypeError):
                complete = False  # a file being replaced right now: indexed on the next look
        for qid in self._created.keys() - present:
            del self._created[qid]  # removed by hand
        self._open = sorted(
            (created, qid) for qid, created in self._created.items() if qid not in self._answered
        )
        settled = started - mtime > MTIME_GRANULARITY * 1e9
        self._queries_listed = mtime if complete and settled else None

    def _look_at_answers(self) -> None:
        folder = self.root / "answers"
        mtime = folder.stat().st_mtime_ns
        if mtime == self._answers_listed:
            return
        started = time.time_ns()
        self._answered.update(n[:-5] for n in os.listdir(folder) if n.endswith(".json"))
        self._open = [(created, qid) for created, qid in self._open if qid not in self._answered]
        settled = started - mtime > MTIME_GRANULARITY * 1e9
        self._answers_listed = mtime if settled else None

    # ----- answers ----------------------------------------------------------------------
    def answer(self, qid: str, answer: str, annotator: str, seconds: float | None = None) -> bool:
        """Record ``annotator``'s ``answer`` ("a", "b", "equal" or "skip") to ``qid`` on disk,
        with the ``seconds`` the answer took (from when the page showed the query) where known;
        returns False when the query was already answered or withdrawn."""
        if answer not in ANSWERS:
            raise ConfigError(f"answer must be one of {', '.join(map(repr, ANSWERS))}")
        record = {
            "id": qid,
            "answer": answer,
            "annotator": annotator,
            "time": time.time(),
            "seconds": seconds,
        }
        written = _atomic_write(
            self.root / "answers" / f"{qid}.json", json.dumps(record).encode(), exclusive=True
        )
        with self._lock:
            self._answered.add(qid)
            self._open = [(created, q) for created, q in self._open if q != qid]
        return written

    def withdraw(self, qid: str) -> bool:
        """Close ``qid`` unanswered (the teacher stopped waiting); False if it was answered."""
        record = {"id": qid, "answer": None, "withdrawn": True, "time": time.time()}
        return _atomic_write(
            self.root / "answers" / f"{qid}.json", json.dumps(record).encode(), exclusive=True
        )

    def is_closed(self, qid: str) -> bool:
        """Whether ``qid`` has an answer (or was withdrawn)."""
        return qid in self._answered or (self.root / "answers" / f"{qid}.json").exists()

    def read_answer(self, qid: str) -> dict[str, Any] | None:
        """The answer record of ``qid``, or None while it is open."""
        try:
            return json.loads((self.root / "answers" / f"{qid}.json").read_text())
        except FileNotFoundError:
            return None

    # ----- annotators -------------------------------------------------------------------
    def add_annotators(self, names: list[str], reissue: bool = False) -> dict[str, str]:
        """Give each annotator in ``names`` without a token (every one, with ``reissue``) a
        new unguessable token; returns ``{name: token}`` of the new tokens. Only the tokens'
        SHA-256 is stored, so a token is shown once."""
        for name in names:
            if not ANNOTATOR_NAME.fullmatch(name):
                raise ConfigError(
                    f"annotator name {name!r} must be 1-40 letters, digits, '_', '.' or '-'"
                )
        hashes = self._annotator_hashes()
        new = {n: secrets.token_urlsafe(32) for n in names if reissue or n not in hashes}
        hashes.update({n: _token_hash(t) for n, t in new.items()})
        path = self.root / "annotators.json"
        try:
            _atomic_write(path, json.dumps(hashes, indent=1).encode())
            os.chmod(path, 0o600)
        except OSError as err:
            raise ConfigError(f"{str(path)!r} cannot be written: {err.strerror}") from None
        return new

    def _annotator_hashes(self) -> dict[str, str]:
        path = self.root / "annotators.json"
        if not path.exists():
            return {}
        try:
            hashes = json.loads(path.read_text())
        except (OSError, ValueError):
            raise ConfigError(f"{str(path)!r} is not a JSON annotators file") from None
        if not isinstance(hashes, dict):
            raise ConfigError(f"{str(path)!r} is not a JSON annotators file")
        for name, stored in hashes.items():
            if not isinstance(stored, str):
                raise ConfigError(
                    f"{str(path)!r}: annotator {name!r} has {stored!r}, not a token's SHA-256 "
                    "(fix the file, or delete it and issue the annotators' tokens again)"
                )
        return hashes

    def annotators(self) -> list[str]:
        """Names of the annotators holding a token."""
        return sorted(self._annotator_hashes())

    def annotator_for(self, token: str, hashes: dict[str, str] | None = None) -> str | None:
        """The annotator whose token is ``token``, else None (compared in constant time)."""
        digest = _token_hash(token)
        found = None
        for name, stored in (self._annotator_hashes() if hashes is None else hashes).items():
            if secrets.compare_digest(digest, stored):
                found = name
        return found
