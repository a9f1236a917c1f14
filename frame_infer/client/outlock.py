"""One writer per ``--out`` folder: an exclusive lock that says who holds it.

Two ``run`` (or ``predict``) processes on one ``--out`` would both send every frame and
race on the journal and ``predictions.jsonl.tmp``. The second one now stops at once with
the first one's pid, command and start time. The lock is ``flock`` on
``OUT/.frame-infer.lock``: the kernel drops it when its holder exits, however it exits,
so a crash never leaves a stale lock to delete by hand. Within one process the lock is
re-entrant (``run`` holds it and calls ``predict``, which takes it again).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

from ..errors import ExitCode, FrameInferError, InputError

LOCK_NAME = ".frame-infer.lock"
_guard = threading.Lock()
_held: dict[Path, list] = {}  # resolved folder -> [fd, depth]


class OutBusyError(FrameInferError):
    """Another process writes into the same ``--out`` folder now."""

    exit_code = ExitCode.ENVIRONMENT


def check_out_folder(out: Path) -> None:
    """``--out`` must be a folder (or not exist yet), not a file."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file, not a folder: give a folder for the "
                         "frames and results (it is created if missing)")


@contextlib.contextmanager
def out_lock(out: Path | str, command: str = "") -> Iterator[None]:
    """Hold ``out``'s lock for the block; :class:`OutBusyError` when another process has
    it (its pid, command and start time in the message)."""
    out = Path(out)
    check_out_folder(out)
    out.mkdir(parents=True, exist_ok=True)
    key = out.resolve()
    with _guard:
        if key in _held:
            _held[key][1] += 1
            fd = None
        else:
            fd = _acquire(out, command)
            _held[key] = [fd, 1]
    try:
        yield
    finally:
        with _guard:
            _held[key][1] -= 1
            if _held[key][1] == 0:
                os.close(_held.pop(key)[0])  # closing the descriptor releases the lock


def _acquire(out: Path, command: str) -> int:
    path = out / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise OutBusyError(f"{out} is in use by {holder}: wait for it to end (or stop it), "
                           "then run this command again (it resumes); or give another "
                           "--out") from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "command": command or " ".join(sys.argv),
                             "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}).encode())
    return fd


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return (f"process {info['pid']} on {info['host']} ({info['command']!r}, since "
                f"{info['started']})")
    except (OSError, ValueError, KeyError, TypeError):
        return "another process (it is starting)"
