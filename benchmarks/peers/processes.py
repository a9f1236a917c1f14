"""A server command in its own process group, ready when its URL answers, stopped by pid.

:class:`ServerProcess` starts the command with ``start_new_session`` (its pid is its
process group's id), polls a URL until it answers 200, and on leaving the ``with`` block,
however it ends, sends SIGTERM to the group, then SIGKILL to the group and to every
descendant it has seen (some frameworks start daemons in a session of their own), and
waits for the leader. :meth:`ServerProcess.cpu_seconds` is the CPU of the whole tree.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path


class ServerFailed(RuntimeError):
    """The server exited or never answered; the message ends with its log's last lines."""


class ServerProcess:
    def __init__(self, command: list[str], ready_url: str, log: Path, env: dict | None = None,
                 cwd: Path | None = None, start_timeout_s: float = 180.0):
        self.command, self.ready_url, self.log = command, ready_url, Path(log)
        self.env = {**os.environ, **(env or {})}
        self.cwd, self.start_timeout_s = cwd, start_timeout_s
        self.process: subprocess.Popen | None = None
        self._seen: dict[int, object] = {}
        self.started_s = 0.0

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> "ServerProcess":
        self.log.parent.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=self.env,
                                            cwd=self.cwd, start_new_session=True)
        try:
            self._wait_ready(began)
        except BaseException:
            self.stop()
            raise
        self.started_s = time.monotonic() - began
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _wait_ready(self, began: float) -> None:
        while time.monotonic() - began < self.start_timeout_s:
            if self.process.poll() is not None:
                raise ServerFailed(f"{self.command[0]} exited ({self.process.returncode}) "
                                   f"before answering {self.ready_url}:\n{self.log_tail()}")
            self.descendants()  # remember them while they are children
            try:
                with urllib.request.urlopen(self.ready_url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.3)
        raise ServerFailed(f"{self.ready_url} did not answer within {self.start_timeout_s:g}s:"
                           f"\n{self.log_tail()}")

    def descendants(self) -> list:
        """The leader and every process below it now, remembered for the stop."""
        import psutil

        if self.process is None:
            return []
        try:
            root = psutil.Process(self.process.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return []
        for proc in procs:
            self._seen.setdefault(proc.pid, proc)
        return procs

    def cpu_seconds(self) -> float:
        """User + system CPU of the leader and its descendants (those alive now)."""
        import psutil

        total = 0.0
        for proc in self.descendants():
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
        return total

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM to the group, SIGKILL after ``grace_s`` to the group and to every process
        seen below the leader; idempotent."""
        import psutil

        process, self.process = self.process, None
        if process is None:
            return
        try:
            root = psutil.Process(process.pid)
            for proc in root.children(recursive=True):
                self._seen.setdefault(proc.pid, proc)
        except psutil.Error:
            pass
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for proc in self._seen.values():
            try:
                if proc.is_running():  # psutil checks the pid was not reused
                    proc.kill()
            except psutil.Error:
                pass
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            pass
        self._seen.clear()
