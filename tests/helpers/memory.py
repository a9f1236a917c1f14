"""Memory of MMS's worker processes, read from Linux's /proc."""
from __future__ import annotations

import os
from pathlib import Path

from frame_infer.serving.mms import LocalMMS


def worker_pids(server: LocalMMS, model: str) -> list[int]:
    """The processes of ``model``'s workers (listener and handler) started by ``server``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
            group = os.getpgid(int(entry.name))
        except (OSError, ProcessLookupError):
            continue  # gone meanwhile
        if (group == server.process.pid and b"--model-name" in args
                and args[args.index(b"--model-name") + 1] == model.encode()):
            pids.append(int(entry.name))
    return pids


def status_kb(pid: int, key: str) -> int:
    """A ``/proc/PID/status`` memory field in kB: ``VmRSS`` now, ``VmHWM`` the peak."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(f"{key} not in /proc/{pid}/status")


def reset_peak(pid: int) -> None:
    """Start ``VmHWM`` again from the current RSS (Linux 4.0+)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
