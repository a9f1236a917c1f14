"""A pandas DataFrame of an output folder, for notebooks: :func:`load_results`.

One row per row of ``predictions.jsonl`` (with faces: one per face per frame, and one
per frame without a face; without: one per frame), in the report's order (by frame,
then face). Columns, always in this order, whatever the mode, so code written for one
folder works on another:

========================  =====================================================
``time``                  seconds from the start of the video (the row's timestamp)
``index``                 the frame's position in the sampled sequence (read it as
                          ``table["index"]``: ``table.index`` is pandas' own)
``id``                    the id the image had on the wire (``frame_000012_face0``)
``file``                  only for frames read without a manifest: the file name
``person``                the track id of the face's person (nullable; empty
                          until faces are tracked, and for whole frames)
``face``                  the face's number in its frame, left to right (nullable)
``box_x`` … ``box_h``     the face's box in the frame's pixels (nullable)
``detection_score``       the face detector's confidence (NaN when it gives none)
``label``, ``score``      the prediction (empty for an error or a frame without a face)
``error_code``            the error's code (docs/API.md), else empty
``error_message``         its message
one column per emotion    the probability of each label, in the service's order,
                          named by the label (``p_`` + label when a label is also the
                          name of a column above); NaN where there is no prediction
========================  =====================================================

pandas is not a dependency of the client: it comes with the ``notebook`` extra
(``pip install 'frame-infer[notebook]'``). Without it :func:`load_results` raises
:class:`PandasMissingError`, which names the extra.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import ExitCode, FrameInferError
from .records import Prediction, label_order, read_predictions

EXTRA = "notebook"
"""The extra that installs pandas."""
FIXED_COLUMNS = ("time", "index", "id", "file", "person", "face", "box_x", "box_y", "box_w",
                 "box_h", "detection_score", "label", "score", "error_code", "error_message")
NULLABLE_INTEGERS = ("person", "face", "box_x", "box_y", "box_w", "box_h")


class PandasMissingError(FrameInferError, ImportError):
    """pandas is not installed: the DataFrame needs the ``notebook`` extra."""

    exit_code = ExitCode.ENVIRONMENT


def _pandas():
    try:
        import pandas
    except ImportError as exc:
        raise PandasMissingError(
            f"a DataFrame of the results needs pandas: pip install 'frame-infer[{EXTRA}]' "
            "(or pandas itself); predictions.jsonl and predictions.csv hold the same rows "
            "without it") from exc
    return pandas


def label_columns(labels) -> dict[str, str]:
    """The column of each label's probability: the label itself, or ``p_`` + label when
    that would clash with a fixed column."""
    return {lb: f"p_{lb}" if lb in FIXED_COLUMNS else lb for lb in labels}


def _record(p: Prediction, columns: dict[str, str]) -> dict:
    item = p.item
    box = item.box or (None,) * 4
    record = {"time": p.timestamp, "index": p.index, "id": p.frame_id, "file": p.file,
              "person": item.person, "face": item.face,
              "box_x": box[0], "box_y": box[1], "box_w": box[2], "box_h": box[3],
              "detection_score": item.detection_score, "label": p.label, "score": p.score,
              "error_code": p.error_code, "error_message": p.error_message}
    for label, column in columns.items():
        record[column] = p.probabilities.get(label) if p.predicted else None
    return record


def predictions_frame(predictions):
    """The DataFrame of ``predictions`` (:class:`~.records.Prediction` s, in report
    order): the columns of this module's docstring."""
    pandas = _pandas()
    predictions = list(predictions)
    columns = label_columns(label_order(predictions))
    fixed = [c for c in FIXED_COLUMNS
             if c != "file" or any(p.file is not None for p in predictions)]
    frame = pandas.DataFrame([_record(p, columns) for p in predictions],
                             columns=fixed + list(columns.values()))
    for name in NULLABLE_INTEGERS:
        frame[name] = frame[name].astype("Int64")
    for name in ("time", "detection_score", "score", *columns.values()):
        frame[name] = frame[name].astype("float64")
    frame["index"] = frame["index"].astype("int64")
    return frame


def load_results(out_dir):
    """The DataFrame of ``out_dir/predictions.jsonl`` (one row per face per frame, or
    per frame); raises :class:`PandasMissingError` without pandas, and the report's own
    errors (``NotFoundError``, ``ReportError``) for a folder without valid results."""
    _pandas()  # before reading: the missing extra is the first thing to fix
    return predictions_frame(read_predictions(Path(out_dir)))
