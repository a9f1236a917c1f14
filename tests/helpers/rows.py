"""Reading what the client wrote."""
from __future__ import annotations

import json
from pathlib import Path

from frame_infer.client.journal import PREDICTIONS_NAME


def read_rows(out_dir: Path) -> list[dict]:
    """The rows of ``out_dir/predictions.jsonl``, in file order."""
    with open(Path(out_dir) / PREDICTIONS_NAME) as f:
        return [json.loads(line) for line in f]


LABELS = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt"]


def ok_row(index, timestamp, **probs):
    probabilities = {lb: probs.get(lb, 0.0) for lb in LABELS}
    label = max(probabilities, key=probabilities.get)
    return {"index": index, "id": f"frame_{index:06d}", "timestamp": timestamp, "label": label,
            "score": probabilities[label], "probabilities": probabilities}


def error_row(index, timestamp, code="invalid_image"):
    return {"index": index, "id": f"frame_{index:06d}", "timestamp": timestamp,
            "error": {"code": code, "message": f"frame {index} could not be read"}}


ROWS = [  # a hand-made run: predictions and per-image errors over three seconds
    ok_row(0, 0.0, neutral=0.6, happiness=0.4),
    ok_row(1, 0.5, neutral=0.2, happiness=0.8),
    error_row(2, 0.9),
    ok_row(3, 1.0, neutral=1.0),
    error_row(4, 1.5, "image_too_large"),
    error_row(5, 2.0),
]


def write_sample_predictions(folder: Path) -> Path:
    """``folder/predictions.jsonl`` holding ``ROWS``, written out of order (the report
    must sort by index, not trust the file order); returns ``folder``."""
    lines = [json.dumps(r) for r in ROWS]
    (Path(folder) / PREDICTIONS_NAME).write_text("\n".join(lines[3:] + lines[:3]) + "\n")
    return Path(folder)
