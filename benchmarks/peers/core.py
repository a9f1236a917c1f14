"""What every peer server runs, so that only the framework differs: the same ONNX file on
the project's onnxruntime engine, the project's own request parsing and preprocessing
(``model_handler.codecs.split_multipart``, ``model_handler.imaging``), and an answer in the
shape ``frame-infer serve`` gives (``{"predictions": [{"id", "label", "score",
"probabilities"}]}``).

A peer app builds one :class:`Classifier` per worker process and calls
:meth:`Classifier.decode` (a multipart body -> ids and pixels), :meth:`Classifier.forward`
(pixels of one or more requests -> probabilities, one engine call) and
:meth:`Classifier.answer`. Each forward appends its image count to a file of its own
process in ``FRAME_INFER_PEER_STATS`` (a folder), from which the benchmark reads the
images per forward of every framework alike.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from model_handler.codecs import split_multipart
from model_handler.config import ModelConfig, load_config
from model_handler.engine import OnnxRuntimeEngine
from model_handler.imaging import decode_image, normalise

MODEL_DIR_ENV = "FRAME_INFER_PEER_MODEL_DIR"
"""The folder holding the ONNX file (and nothing else ONNX): every peer reads its model here."""
THREADS_ENV = "FRAME_INFER_PEER_THREADS"
"""onnxruntime threads per worker process: cores / worker processes, as ``serve`` sets."""
STATS_ENV = "FRAME_INFER_PEER_STATS"
"""A folder: each process appends one line per forward (its image count) to its own file."""


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    return shifted / shifted.sum(axis=1, keepdims=True)


class Classifier:
    """One worker's model: load once, then decode, forward and answer per request."""

    def __init__(self, model_dir: str | Path | None = None, threads: int | None = None):
        model_dir = Path(model_dir or os.environ[MODEL_DIR_ENV])
        self.config: ModelConfig = load_config(model_dir)
        threads = threads or int(os.environ.get(THREADS_ENV) or 0) or os.cpu_count()
        self.engine = OnnxRuntimeEngine(str(model_dir / self.config.model_file),
                                        self.config.input_name, self.config.max_batch_size,
                                        threads=threads)
        stats = os.environ.get(STATS_ENV)
        self._stats = Path(stats) / f"forwards-{os.getpid()}.txt" if stats else None

    def decode(self, body: bytes, content_type: str | None) -> tuple[list[str], np.ndarray]:
        """A multipart body (one image per file part, its field name the id) -> the ids and
        the model's input (N, C, H, W) float32, exactly as the MMS handler prepares it."""
        return self.decode_parts([(name, value) for name, _, value
                                  in split_multipart(body, content_type)])

    def decode_parts(self, parts: list[tuple[str, bytes]]) -> tuple[list[str], np.ndarray]:
        """``(id, encoded image)`` pairs (a framework's own form parsing) -> ids and input."""
        ids, pixels = [], []
        for name, value in parts:
            ids.append(name)
            pixels.append(decode_image(value, self.config))
        batch = np.stack(pixels).astype(np.float32)
        normalise(batch, np.arange(len(batch)), self.config)
        return ids, batch

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities for every row of ``batch``, in one engine call (recorded)."""
        out = self.engine.forward(batch)
        if self._stats is not None:
            with open(self._stats, "a") as f:
                f.write(f"{len(batch)}\n")
        return softmax(out) if self.config.softmax else out.astype(np.float64)

    def answer(self, ids: list[str], probs: np.ndarray) -> dict:
        labels = self.config.labels
        return {"predictions": [
            {"id": image_id, "label": labels[int(row.argmax())], "score": float(row.max()),
             "probabilities": {label: float(p) for label, p in zip(labels, row)}}
            for image_id, row in zip(ids, probs)]}

    def handle(self, body: bytes, content_type: str | None) -> dict:
        """One request alone: decode, forward, answer (the unbatched frameworks' path)."""
        ids, batch = self.decode(body, content_type)
        return self.answer(ids, self.forward(batch))


def answer_json(answer: dict) -> bytes:
    return json.dumps(answer).encode("utf-8")


def read_forwards(folder: Path) -> list[int]:
    """Every forward's image count recorded so far in ``folder`` (all processes)."""
    counts: list[int] = []
    for path in sorted(Path(folder).glob("forwards-*.txt")):
        counts += [int(line) for line in path.read_text().split()]
    return counts
