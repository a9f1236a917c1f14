"""Why MMS did not serve, in one line: checks before it starts, and the cause read from its log.

MMS answers a failed registration with a generic message ("Failed to start workers",
"Model handler is not defined") while the reason sits in its log among Java stack traces,
duplicated. These functions name the cause and the fix in one line and point to the log
file for the rest, so ``serve`` never prints the log itself.
"""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import InputError, ModelLoadError, NotFoundError

MMS_LOG = "mms_log.log"
"""MMS's main log in its log dir; the workers' stdout and stderr are copied into it."""
_WORKER_ERROR = re.compile(r"WorkerLifeCycle - ((?:[\w.]+\.)?\w*(?:Error|Exception)\b: .*)")
_BIND_FAILED = re.compile(r"Failed to bind to address: https?://([^\s:]+):(\d+)")


def is_url(archive: str) -> bool:
    """Whether ``archive`` is a URL MMS fetches itself (nothing local to check)."""
    return "://" in archive


def check_archive(store: Path, archive: str) -> None:
    """Refuse, naming the fix, what MMS would fail on only after it started: a store folder
    that does not exist, a model that is not a ``.mar``, an archive not in the store."""
    if is_url(archive):
        return
    store = Path(store)
    path = Path(archive)
    if path.suffix.lower() != ".mar":
        if path.suffix.lower() != ".onnx":
            raise InputError(
                f"serve takes a .mar archive, not {path.name}: build one from an ONNX model "
                f"with `frame-infer package --model M.onnx --name NAME --out {store}`")
        model = store / path if (store / path).is_file() else path
        raise InputError(
            f"serve takes a .mar archive, not {path.name}: run `frame-infer package --model "
            f"{model} --name {path.stem} --out {store}` first, then serve {path.stem}.mar")
    if not store.is_dir():
        raise NotFoundError(
            f"model store folder {store} does not exist: package a model into it first "
            f"(`frame-infer package --model M.onnx --name NAME --out {store}`)")
    if not (store / archive).is_file():
        held = sorted(p.name for p in store.glob("*.mar"))
        there = f"it holds {', '.join(held)}" if held else "it holds no .mar"
        raise NotFoundError(
            f"{archive} is not in the model store {store} ({there}): package it with "
            f"`frame-infer package --model M.onnx --name {path.stem} --out {store}` or "
            "pass the name of an archive that is there")


def worker_cause(log_dir: Path) -> str | None:
    """The last Python error a worker printed (``ValueError: … 5 outputs but …``), if any."""
    path = Path(log_dir) / MMS_LOG
    if not path.is_file():
        return None
    causes = _WORKER_ERROR.findall(path.read_text(errors="replace"))
    return causes[-1].strip() if causes else None


def last_line(path: Path) -> str | None:
    """The last non-empty line of ``path`` (Java's own last word when it exits at start)."""
    if not Path(path).is_file():
        return None
    lines = [ln.strip() for ln in Path(path).read_text(errors="replace").splitlines()]
    return next((ln for ln in reversed(lines) if ln), None)


def unbound_port(stdout_log: Path, management_port: int) -> str | None:
    """One line naming the port Java could not bind, if that is why it exited."""
    if not Path(stdout_log).is_file():
        return None
    failed = _BIND_FAILED.search(Path(stdout_log).read_text(errors="replace"))
    if not failed:
        return None
    host, number = failed.groups()
    what = "management" if int(number) == management_port else "inference"
    return (f"{what} port {number} on {host} is already in use (MMS could not bind it); "
            "stop what listens there or choose another port")


def registration_error(archive: str, name: str, status: int, detail: str,
                       log_dir: Path) -> ModelLoadError:
    """One line for a refused registration: MMS's reason, the worker's cause, the log."""
    mms_says = _mms_message(detail)
    cause = worker_cause(log_dir)
    if status == 400 and "handler is not defined" in mms_says.lower():
        return ModelLoadError(f"{archive} has no handler: it is not an archive built by "
                           "`frame-infer package`; package the .onnx model with it and serve "
                           f"that .mar; details: {Path(log_dir) / MMS_LOG}")
    what = f"model {name} ({archive}) failed to start: MMS says {mms_says!r} ({status})"
    if cause:
        what += f"; the worker's error: {cause}"
    return ModelLoadError(f"{what}; details: {Path(log_dir) / MMS_LOG}")


def _mms_message(detail: str) -> str:
    """The ``message`` of MMS's JSON error body, else the body itself on one line."""
    import json

    try:
        return str(json.loads(detail)["message"])
    except (ValueError, KeyError, TypeError):
        return " ".join(detail.split())[:200]
