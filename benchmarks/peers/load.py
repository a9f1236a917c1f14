"""One load generator for every server, and the check of every image's answer.

:class:`Workload` holds the request bodies (multipart, one JPEG frame per file part, its
field name the image id) and each image's reference probabilities, computed in this
process with onnxruntime on the project's own preprocessing. :func:`send_all` sends every
body once with ``concurrency`` requests in flight (one keep-alive connection per sender
thread) and returns what came back; :func:`check` compares it with the reference: an image
with no answer, an error, or probabilities off by more than :data:`TOLERANCE` marks the
server (marked, not ranked).
"""
from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

TOLERANCE = 1e-4
"""Largest |Δp| that counts as the same answer (the equivalence tests' bar)."""
MULTIPART = "multipart/form-data"


def multipart(parts: list[tuple[str, bytes]], content_type: str = "image/jpeg"
              ) -> tuple[bytes, str]:
    """``(name, bytes)`` file parts -> a ``multipart/form-data`` body and its Content-Type."""
    boundary = uuid.uuid4().hex
    chunks = []
    for name, data in parts:
        chunks += [f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; "
                   f"filename=\"{name}.jpg\"\r\nContent-Type: {content_type}\r\n\r\n"
                   .encode(), data, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"{MULTIPART}; boundary={boundary}"


@dataclass
class Workload:
    bodies: list[tuple[bytes, str, list[str]]]
    """(body, Content-Type, the ids it carries), in sending order."""
    reference: dict[str, np.ndarray]
    """id -> the probabilities onnxruntime gives in this process, in label order."""
    labels: tuple[str, ...]

    @property
    def images(self) -> int:
        return sum(len(ids) for _, _, ids in self.bodies)


def build_workload(frames: list[Path], model_dir: Path, per_request: int = 16) -> Workload:
    """Bodies of ``per_request`` frames each (ids: the file names without suffix), and
    the reference answer of every frame."""
    from .core import Classifier

    reference_model = Classifier(model_dir)
    bodies, reference = [], {}
    for start in range(0, len(frames), per_request):
        parts = [(frames[i].stem, frames[i].read_bytes())
                 for i in range(start, min(start + per_request, len(frames)))]
        body, content_type = multipart(parts)
        bodies.append((body, content_type, [name for name, _ in parts]))
        ids, batch = reference_model.decode(body, content_type)
        for image_id, probs in zip(ids, reference_model.forward(batch)):
            reference[image_id] = probs
    return Workload(bodies, reference, tuple(reference_model.config.labels))


@dataclass
class LoadResult:
    wall_s: float = 0.0
    latencies: list[float] = field(default_factory=list)
    answers: dict[str, object] = field(default_factory=dict)
    """id -> its probabilities dict, or a string saying what went wrong instead."""
    errors: list[str] = field(default_factory=list)
    """One line per failed request (status, reset, timeout, unreadable answer)."""


def _post(conn: http.client.HTTPConnection, path: str, body: bytes, content_type: str
          ) -> tuple[int, bytes]:
    conn.request("POST", path, body=body, headers={"Content-Type": content_type})
    response = conn.getresponse()
    return response.status, response.read()


def send_all(url: str, workload: Workload, concurrency: int, timeout_s: float = 120.0
             ) -> LoadResult:
    """Every body once, ``concurrency`` in flight; never raises for a server's fault."""
    parsed = urllib.parse.urlsplit(url)
    path = parsed.path or "/"
    result, lock = LoadResult(), threading.Lock()
    queue = list(enumerate(workload.bodies))
    queue.reverse()

    def sender():
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout_s)
        try:
            while True:
                with lock:
                    if not queue:
                        return
                    _, (body, content_type, ids) = queue.pop()
                began = time.perf_counter()
                try:
                    status, data = _post(conn, path, body, content_type)
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()  # reconnect for the next body
                    conn = http.client.HTTPConnection(parsed.hostname, parsed.port,
                                                      timeout=timeout_s)
                    status, data = None, f"{type(exc).__name__}: {exc}".encode()
                elapsed = time.perf_counter() - began
                _record(result, lock, ids, status, data, elapsed)
        finally:
            conn.close()

    began = time.perf_counter()
    threads = [threading.Thread(target=sender, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.wall_s = time.perf_counter() - began
    return result


def _record(result: LoadResult, lock: threading.Lock, ids: list[str], status, data: bytes,
            elapsed: float) -> None:
    answers, error = {}, None
    if status != 200:
        error = (f"HTTP {status}" if status is not None else "no answer") + \
            f": {data[:200].decode('utf-8', 'replace')}"
    else:
        try:
            for entry in json.loads(data)["predictions"]:
                answers[str(entry["id"])] = entry.get("probabilities") or \
                    f"no probabilities: {entry}"
        except (ValueError, KeyError, TypeError) as exc:
            error = f"unreadable answer ({exc}): {data[:200]!r}"
    with lock:
        result.latencies.append(elapsed)
        if error:
            result.errors.append(error)
            for image_id in ids:
                result.answers.setdefault(image_id, error)
        else:
            result.answers.update(answers)


@dataclass(frozen=True)
class Check:
    answered: int
    """Images whose answer came back with probabilities."""
    images: int
    max_dp: float
    """Largest |Δp| over every answered image and label (nan when none was answered)."""
    problems: tuple[str, ...]
    """Up to 5 examples: missing ids, errors, altered answers."""

    @property
    def all_answered(self) -> bool:
        return self.answered == self.images

    @property
    def correct(self) -> bool:
        return self.all_answered and self.max_dp <= TOLERANCE


def check(result: LoadResult, workload: Workload) -> Check:
    """Every image of ``workload`` against its reference; extra or unknown ids count too."""
    answered, worst, problems = 0, 0.0, []
    for image_id, expected in workload.reference.items():
        got = result.answers.get(image_id)
        if not isinstance(got, dict):
            problems.append(f"{image_id}: {got or 'no answer'}")
            continue
        try:
            vector = np.array([float(got[label]) for label in workload.labels])
        except (KeyError, TypeError, ValueError):
            problems.append(f"{image_id}: labels {sorted(got)} are not the model's")
            continue
        answered += 1
        dp = float(np.abs(vector - expected).max())
        if dp > TOLERANCE:
            problems.append(f"{image_id}: probabilities differ by {dp:.3g}")
        worst = max(worst, dp)
    unknown = set(result.answers) - set(workload.reference)
    if unknown:
        problems.append(f"answers for ids never sent: {sorted(unknown)[:3]}")
    return Check(answered, len(workload.reference), worst if answered else float("nan"),
                 tuple(problems[:5]))
