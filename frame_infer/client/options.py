"""How frames are sent: one documented object for ``predict``, ``run`` and ``Client``.

The command line builds these from its flags; library callers build them directly.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import InputError
from ..s3 import S3Location, parse_s3_uri
from .faces import FaceOptions
from .targets.base import RetryPolicy


@dataclass(frozen=True)
class PredictOptions:
    """Request options of ``predict`` (and of ``run``'s predict step)."""

    batch_size: int = 16
    """Frames per request (multi-image requests; a 413 answer splits a request)."""
    concurrency: int = 4
    """Requests in flight at once."""
    retry: RetryPolicy = RetryPolicy()
    """Attempts and backoff per request."""
    by_reference: bool = False
    """Send ``s3://`` references instead of bytes (the service fetches the frames)."""
    progress: bool = True
    """Show progress bars."""
    max_payload: int | None = None
    """Bytes per request; None: the target's limit (docs/API.md, "Limits")."""
    timeout: float = 60.0
    """Seconds to wait for one HTTP response."""
    resize_to: tuple[int, int, str] | str | None = "auto"
    """Shrink frames to the model's input in the client, with the service's own decoding
    code, and send them as lossless PNG: the same predictions, ~10x fewer bytes and no
    full-frame decode in the service. "auto": from the first answer on, which names the
    model's input (``model.input``); (width, height, "L" or "RGB"): from the first frame;
    None: send frames as they are stored."""
    fps: float = 30.0
    """Timestamps of frames that come without a manifest."""
    s3_endpoint_url: str | None = None
    """S3 endpoint override (frames in S3, async request bodies)."""
    sagemaker_endpoint_url: str | None = None
    """SageMaker runtime endpoint override."""
    async_s3: str | None = None
    """``sagemaker-async:`` only: ``s3://bucket/prefix`` the request bodies go to."""
    async_timeout: float = 900.0
    """``sagemaker-async:`` only: seconds to wait for one result before a retry."""
    retry_errors: bool = False
    """Also resend frames whose final row is a per-image error (e.g. ``invalid_image``)."""

    def __post_init__(self) -> None:
        problems = [f"{name} must be at least {low}, got {value!r}" for name, value, low in (
            ("batch_size", self.batch_size, 1), ("concurrency", self.concurrency, 1),
            ("retry.max_attempts", self.retry.max_attempts, 1))
            if not isinstance(value, int) or value < low]
        problems += [f"{name} must be above 0, got {value!r}" for name, value in (
            ("timeout", self.timeout), ("fps", self.fps), ("async_timeout", self.async_timeout))
            if not value > 0]
        if isinstance(self.resize_to, str) and self.resize_to != "auto":
            problems.append(f"resize_to must be \"auto\", None or (width, height, mode), "
                            f"got {self.resize_to!r}")
        if self.max_payload is not None and self.max_payload < 1024:
            problems.append(f"max_payload must be at least 1024 bytes, got {self.max_payload}")
        if problems:
            raise InputError("invalid predict options: " + "; ".join(problems))


@dataclass(frozen=True)
class JobOptions:
    """Options of the whole video job (``run``, ``Client.predict_video``)."""

    predict: PredictOptions = field(default_factory=PredictOptions)
    bucket: S3Location | None = None
    """``s3://bucket/prefix`` (a string is parsed here, so a typo fails before the video
    is cut): upload frames and the report there; None keeps them local."""
    re_extract: bool = False
    """Cut the frames again even when the folder has them."""
    faces: FaceOptions | None = None
    """Find faces in every frame and predict each face crop instead of the whole frame
    (one row per face; with ``bucket`` the crops are uploaded too). None: whole frames."""
    smooth: float | None = None
    """Seconds of the window mean each person's dominant emotions are read from in the
    report (``--smooth``); None: per second, unsmoothed (raw values are always kept)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "bucket", parse_s3_uri(self.bucket) if self.bucket else None)
        if self.smooth is not None and not self.smooth > 0:
            raise InputError(f"smooth must be a number of seconds above 0, got {self.smooth!r}")
