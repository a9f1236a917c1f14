"""The Python client: ``Client(endpoint).predict(images)`` and ``predict_video(...)``.

For people who script rather than use the command line. It is the same machinery as
``frame-infer predict`` and ``run``: multi-image requests under the endpoint's payload
limit, several in flight, retried with backoff on throttling, 5xx and connection
errors, split in half on 413 (docs/API.md). Every image gets exactly one result, in
input order: a prediction or an error.

Example (a local MMS from ``frame-infer serve`` or ``make demo``)::

    from frame_infer import Client

    with Client("http://127.0.0.1:8080/predictions/ferplus") as client:
        for result in client.predict(["a.jpg", "b.png"]):
            print(result.id, result.label if result.ok else result.error["message"])

        summary = client.predict_video("talk.mp4", out="build/talk")
        print(summary.summary.predicted, "frames predicted; plot:", summary.timeline_png)

Endpoints are written as on the command line: ``http://HOST:PORT/predictions/NAME``,
``sagemaker:ENDPOINT`` or ``sagemaker-async:ENDPOINT`` (with ``async_s3=...``).
"""
from __future__ import annotations

import io
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Iterable, Union

from ..errors import InputError
from .faces import FaceOptions
from .engine import Engine, Rows
from .items import Item, Kind
from .job import JobResult, run_job
from .options import JobOptions, PredictOptions
from .predict import run_predict
from .sources import FrameReader
from .summary import PredictSummary
from .targets import RetryPolicy, make_target

ImageInput = Union[str, Path, bytes, bytearray, Any]
"""A file path, encoded image bytes, a PIL image or a numpy array (H, W) or (H, W, C)."""


@dataclass(frozen=True)
class ImageResult:
    """One image's answer: a prediction (``label``, ``score``, ``probabilities``) or an
    ``error`` (``{"code", "message"}``; codes in docs/API.md)."""

    index: int
    """Position in the input."""
    id: str
    """The id the image had on the wire (``frame_000000`` for the first)."""
    label: str | None = None
    score: float | None = None
    probabilities: dict[str, float] | None = None
    error: dict | None = None
    source: str | None = None
    """The path, when the image was given as one."""
    face: int | None = None
    """``predict(..., faces=True)``: the face's number in its image (left to right);
    None for an image without a face (then ``no_face`` is True)."""
    box: tuple[int, int, int, int] | None = None
    """``faces=True``: (x, y, w, h) of the face in the image's pixels."""
    detection_score: float | None = None
    """``faces=True``: the detector's confidence (BlazeFace), None for the cascade."""
    no_face: bool = False
    """``faces=True``: the image has no face (no label, no error)."""

    @property
    def ok(self) -> bool:
        """True for a prediction (or an image without a face), False for an error."""
        return self.error is None


def encode_image(image: ImageInput) -> bytes:
    """Bytes to send for one input: files are read, bytes kept, PIL images and arrays
    encoded as PNG (lossless)."""
    if isinstance(image, (str, Path)):
        path = Path(image)
        if not path.is_file():
            raise InputError(f"image {path} does not exist (or is not a file)")
        return path.read_bytes()
    if isinstance(image, (bytes, bytearray, memoryview)):
        return bytes(image)
    from PIL import Image

    if not isinstance(image, Image.Image):
        import numpy as np

        if not isinstance(image, np.ndarray):
            raise InputError(f"cannot send a {type(image).__name__}: give a path, encoded "
                             "bytes, a PIL image or a uint8 numpy array (H, W) or (H, W, 3)")
        if image.dtype != np.uint8 or image.ndim not in (2, 3) or \
                (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
            raise InputError(f"numpy image of dtype {image.dtype} and shape {image.shape}: "
                             "give uint8 pixels shaped (H, W), (H, W, 1), (H, W, 3) or "
                             "(H, W, 4)")
        image = Image.fromarray(image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1
                                else image)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _result(item: Item, row: dict, source: str | None) -> ImageResult:
    where = {"face": item.face, "box": item.box, "detection_score": item.detection_score,
             "no_face": item.kind is Kind.NO_FACE}
    if "error" in row:
        return ImageResult(item.index, row["id"], error=row["error"], source=source, **where)
    if "label" not in row:  # an image without a face
        return ImageResult(item.index, row["id"], source=source, **where)
    return ImageResult(item.index, row["id"], label=row["label"], score=row["score"],
                       probabilities=row["probabilities"], source=source, **where)


def _face_items(datas: list[bytes], sources: list[str | None], options: FaceOptions
                ) -> tuple[list[Item], dict[tuple, bytes]]:
    """The items of the faces in ``datas`` (a NO_FACE item for an image without one) and
    each face's crop bytes by item key."""
    from .faces import FaceDetector
    from .photos import decode_rgb

    detector = FaceDetector(options)
    items, crops = [], {}
    for index, (data, source) in enumerate(zip(datas, sources)):
        found = detector.faces(decode_rgb(data, source or f"image {index}"))
        if not found:
            items.append(Item(index, 0.0, Kind.NO_FACE))
        for number, crop in enumerate(found):
            item = Item(index, 0.0, Kind.FACE, face=number, box=crop.box,
                        detection_score=crop.score)
            items.append(item)
            crops[item.key] = crop.data
    return items, crops


class Client:
    """One endpoint, its options and its connection pool. Use as a context manager.

    ``options`` is a :class:`~frame_infer.client.options.PredictOptions`; keyword
    arguments override its fields (``batch_size=32``, ``concurrency=8``, ``retries=3``
    for ``retry=RetryPolicy(max_attempts=3)``, ``async_s3="s3://..."``). Progress bars
    are off unless ``progress=True``.
    """

    def __init__(self, endpoint: str, options: PredictOptions | None = None, **overrides):
        known = {f.name for f in fields(PredictOptions)} | {"retries"}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise InputError(f"unknown option(s) {', '.join(unknown)}; choose from "
                             f"{', '.join(sorted(known))}")
        if "retries" in overrides:
            overrides["retry"] = RetryPolicy(max_attempts=overrides.pop("retries"))
        base = options or PredictOptions(progress=False)
        self.endpoint = endpoint
        self.options = replace(base, **overrides)
        self.target = make_target(endpoint, self.options)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool (HTTP endpoints)."""
        close = getattr(self.target, "close", None)
        if close is not None:
            close()

    def predict(self, images: Iterable[ImageInput],
                faces: bool | FaceOptions = False) -> list[ImageResult]:
        """One :class:`ImageResult` per image, in input order; with ``faces`` (True or a
        :class:`FaceOptions`) one per face found, in image then face order, and one with
        ``no_face`` for an image without a face (the detector and crops of ``--faces``).

        Images (or face crops) go out in multi-image requests of ``batch_size``,
        ``concurrency`` at a time. An image the service cannot read gets its own error;
        a request that fails after every retry gives its images ``request_failed``.

        >>> client.predict([Path("a.jpg"), pil_image, array])[0].label  # doctest: +SKIP
        'happiness'
        >>> [(r.face, r.label) for r in client.predict(["group.jpg"], faces=True)]
        ... # doctest: +SKIP
        [(0, 'happy'), (1, 'neutral'), (2, 'surprise')]
        """
        datas, sources = [], []
        for image in images:
            datas.append(encode_image(image))
            sources.append(str(image) if isinstance(image, (str, Path)) else None)
        if faces:
            items, by_key = _face_items(datas, sources, FaceOptions() if faces is True
                                        else faces)
        else:
            items = [Item(i, 0.0) for i in range(len(datas))]
            by_key = {item.key: data for item, data in zip(items, datas)}
        reader = FrameReader(resize_to=self.options.resize_to)
        rows = Rows()
        engine = Engine(self.target, rows, replace(self.options, by_reference=False), reader,
                        too_large_fix="send a smaller image or set resize_to")
        engine.run(items, lambda item: reader.prepare(by_key[item.key]))
        return [_result(item, rows.rows[item.key], sources[item.index]) for item in items]

    def predict_frames(self, source: str | Path, out: str | Path) -> PredictSummary:
        """``frame-infer predict``: every frame of a frames folder or ``s3://`` prefix,
        results in ``out/predictions.jsonl``; a second call resumes."""
        return run_predict(str(source), out, self.endpoint, self.options, target=self.target)

    def predict_video(self, video: str | Path, out: str | Path, bucket: str | None = None,
                      re_extract: bool = False, faces: bool | FaceOptions = False,
                      annotate: str | Path | None = None) -> JobResult:
        """``frame-infer run``: extract, (upload to ``bucket``), predict, report into
        ``out``; returns the job's summary (counts, timings, the report's paths), whose
        ``dataframe()`` is the results as a pandas DataFrame (the ``notebook`` extra).

        ``faces=True`` (or a :class:`FaceOptions`) is ``run --faces``: each face found
        is predicted on its own, one row per face (with ``bucket`` the crops are uploaded).
        ``annotate`` (a path such as ``"out/annotated.mp4"``) is ``run --annotate``: the
        video with each face's box, person, label and score drawn on it."""
        face_options = FaceOptions() if faces is True else (faces or None)
        return run_job(video, out, self.endpoint,
                       JobOptions(predict=self.options, bucket=bucket, re_extract=re_extract,
                                  faces=face_options), annotate=annotate)
