"""Fetch ``s3://`` image references with the instance's credentials, allowed buckets only.

Bounded in time and memory, whatever S3 (or a stand-in) does: the client has explicit
connect and read timeouts, each batch's fetches share one deadline, and the bytes one
batch holds at once (fetched, not yet decoded) stay under a budget. With a ``decode``
function, each body is decoded as soon as it arrives and only the small result is kept.

What one request may make the worker fetch is bounded as well (:class:`RequestAllowance`):
a reference repeated within a request is fetched once (300 references to one 20 MB
object cost one fetch, not 6 GB), the distinct objects' bytes are counted against
``s3_max_bytes_per_request`` and their decoded pixels against the request's
``max_request_pixels``, as an image sent in the body is. An object past what is left gets
``image_too_large``; which one depends on the order the fetches finish in.
"""
from __future__ import annotations

import io
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Callable, Sequence

from .codecs import S3Ref
from .config import ModelConfig
from .errors import ImageError
from .imaging import OpenedImage, PixelBudget, finish_image, open_image

logger = logging.getLogger(__name__)

MAX_OBJECT_BYTES = 64 * 1024 * 1024
"""Larger objects are ``image_too_large`` (from their Content-Length, before the body)."""
CHUNK_BYTES = 1024 * 1024
"""Bodies are read in chunks of this size; the deadline is checked between chunks."""


class ByteBudget:
    """The bytes one batch may hold at once: ``acquire`` waits for room, up to a deadline."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._free = capacity
        self._room = threading.Condition()

    def acquire(self, size: int, deadline: float) -> bool:
        """Take ``size`` bytes (at most ``capacity``); False when the deadline comes first."""
        with self._room:
            while self._free < size:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._room.wait(left)
            self._free -= size
            return True

    def release(self, size: int) -> None:
        with self._room:
            self._free += size
            self._room.notify_all()


class S3Late(ImageError):
    """A fetch not done by its deadline (an ``s3_error``): the service may answer its
    request as a whole instead (``s3_shared_wait_s``)."""

    def __init__(self, message: str):
        super().__init__("s3_error", message)


class RequestAllowance:
    """What one request's references may still cost: fetched bytes, decoded pixels.

    Shared by the fetch threads of the request's references, so spending is locked. The
    pixels are the request's own :class:`PixelBudget` (the body's images spend from it too).
    """

    def __init__(self, max_bytes: int, pixels: PixelBudget | None = None):
        self.max_bytes = max_bytes
        self.bytes_left = max_bytes
        self.pixels = pixels
        self._lock = threading.Lock()

    def take_bytes(self, size: int, uri: str) -> ImageError | None:
        """Spend ``size`` fetched bytes; the ImageError to answer when they do not fit."""
        with self._lock:
            if size <= self.bytes_left:
                self.bytes_left -= size
                return None
            left = self.bytes_left
        return ImageError("image_too_large", f"{uri} ({size} bytes) does not fit in the "
                          f"{left} bytes left of the request's S3 budget of {self.max_bytes} "
                          "(s3_max_bytes_per_request); send fewer or smaller objects per "
                          "request")

    def spend_pixels(self, opened: OpenedImage) -> None:
        """Spend the decoded pixels of ``opened`` (raises ImageError when they do not fit)."""
        if self.pixels is not None:
            with self._lock:
                self.pixels.spend(opened)


def pixels_or_error(cfg: ModelConfig) -> Callable[..., object]:
    """``decode`` for :class:`S3Fetcher`: a body becomes the model's pixels or its ImageError;
    its decoded pixels are spent from the request's allowance first, when there is one."""
    def decode(body: bytes, allowance: RequestAllowance | None = None):
        try:
            opened = open_image(body, cfg)
            try:
                if allowance is not None:
                    allowance.spend_pixels(opened)
            except ImageError:
                opened.close()
                raise
            return finish_image(opened, cfg)
        except ImageError as exc:
            return exc
    return decode


class S3Fetcher:
    """Fetches objects concurrently; a bucket not in ``allowed`` is never contacted.

    The boto3 client follows boto3's standard configuration (credential chain, region,
    ``AWS_ENDPOINT_URL_S3``), so any S3-compatible server works without code changes; only
    its timeouts, retry mode and pool size are set here. Each :meth:`fetch_all` runs in its
    own threads and never waits past its deadline: a fetch still stuck then (in a read
    that lasts up to ``read_timeout_s``) ends on its own without holding up the next batch.
    """

    def __init__(self, allowed_buckets: Sequence[str], client=None, max_workers: int = 8,
                 max_bytes: int = MAX_OBJECT_BYTES, max_bytes_in_flight: int = 128 * 1024 * 1024,
                 deadline_s: float = 30.0, connect_timeout_s: float = 5.0,
                 read_timeout_s: float = 10.0, decode: Callable[[bytes], object] | None = None,
                 decode_threads: int | None = None):
        self.allowed = frozenset(allowed_buckets)
        self._client = client
        self._client_lock = threading.Lock()
        self._max_workers = max_workers
        self._max_bytes = min(max_bytes, max_bytes_in_flight)
        self._max_bytes_in_flight = max_bytes_in_flight
        self._deadline_s = deadline_s
        self._timeouts = (connect_timeout_s, read_timeout_s)
        self._decode = decode
        # Decoding in every fetch thread at once would multiply the decoder's memory.
        self._decode_slots = threading.BoundedSemaphore(
            decode_threads or max(1, min(4, os.cpu_count() or 1)))

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> "S3Fetcher":
        """The service's fetcher: the config's buckets, limits and timeouts; bodies decoded
        to the model's pixels as they arrive."""
        return cls(cfg.allowed_s3_buckets, max_bytes_in_flight=cfg.s3_max_bytes_in_flight,
                   deadline_s=cfg.s3_fetch_deadline_s,
                   connect_timeout_s=cfg.s3_connect_timeout_s,
                   read_timeout_s=cfg.s3_read_timeout_s, decode=pixels_or_error(cfg))

    def _get_client(self):
        with self._client_lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                connect, read = self._timeouts
                self._client = boto3.session.Session().client("s3", config=Config(
                    connect_timeout=connect, read_timeout=read, retries={"mode": "standard"},
                    max_pool_connections=self._max_workers))
            return self._client

    def _late(self, ref: S3Ref) -> ImageError:
        return S3Late(f"{ref.uri} was not fetched within the batch's {self._deadline_s:g} s "
                      "(s3_fetch_deadline_s): S3 answered too slowly or not at all")

    def fetch_one(self, ref: S3Ref, budget: ByteBudget | None = None,
                  deadline: float | None = None, allowance: RequestAllowance | None = None):
        """One object: its bytes (or, with ``decode``, the decoded result) or an ImageError;
        with ``allowance``, its bytes and pixels are spent from it."""
        if ref.bucket not in self.allowed:
            allowed = ", ".join(sorted(self.allowed)) or "none"
            return ImageError("s3_forbidden", f"bucket {ref.bucket!r} is not allowed (allowed: "
                              f"{allowed}); add it to allowed_s3_buckets in the model config")
        budget = budget or ByteBudget(self._max_bytes_in_flight)
        deadline = time.monotonic() + self._deadline_s if deadline is None else deadline
        if time.monotonic() >= deadline:
            return self._late(ref)
        from botocore.exceptions import (BotoCoreError, ClientError, ConnectTimeoutError,
                                         ReadTimeoutError)

        try:
            response = self._get_client().get_object(Bucket=ref.bucket, Key=ref.key)
            body = response["Body"]
            try:
                return self._receive(ref, body, response.get("ContentLength"), budget, deadline,
                                     allowance)
            finally:
                body.close()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound", "NoSuchBucket"):
                return ImageError("s3_not_found", f"{ref.uri} does not exist ({code})")
            return ImageError("s3_error", f"cannot read {ref.uri}: {code or exc}")
        except (ConnectTimeoutError, ReadTimeoutError):
            connect, read = self._timeouts
            return ImageError("s3_error", f"cannot read {ref.uri}: S3 did not connect within "
                              f"{connect:g} s or went silent for {read:g} s "
                              "(s3_connect_timeout_s, s3_read_timeout_s)")
        except (BotoCoreError, OSError) as exc:
            return ImageError("s3_error", f"cannot read {ref.uri}: {exc}")

    def _receive(self, ref: S3Ref, body, size: int | None, budget: ByteBudget,
                 deadline: float, allowance: RequestAllowance | None = None):
        """Read ``body`` within the budgets and the deadline, then decode it (if asked)."""
        if size is not None and size > self._max_bytes:
            return ImageError("image_too_large", f"{ref.uri} is {size} bytes, over "
                              f"{self._max_bytes}")
        if allowance is not None and size is not None and \
                (refused := allowance.take_bytes(size, ref.uri)) is not None:
            return refused  # the body is never read
        reserved = self._max_bytes if size is None else size
        if not budget.acquire(reserved, deadline):
            return self._late(ref)
        try:
            received = io.BytesIO()  # grows in place; getvalue() then hands over its buffer
            while chunk := body.read(CHUNK_BYTES):
                if received.tell() + len(chunk) > self._max_bytes:
                    return ImageError("image_too_large", f"{ref.uri} is over "
                                      f"{self._max_bytes} bytes")
                if time.monotonic() >= deadline:
                    return self._late(ref)
                if allowance is not None and size is None and \
                        (refused := allowance.take_bytes(len(chunk), ref.uri)) is not None:
                    return refused
                received.write(chunk)
            data = received.getvalue()
            del received, chunk
            if self._decode is None:
                return data
            with self._decode_slots:
                if time.monotonic() >= deadline:
                    return self._late(ref)
                return self._decode(data) if allowance is None else \
                    self._decode(data, allowance)
        finally:
            budget.release(reserved)

    def fetch_all(self, refs: Sequence[S3Ref],
                  allowances: Sequence[RequestAllowance | None] | None = None,
                  wait_s: float | None = None) -> list:
        """Fetch every reference in parallel; results in the same order. What is not done
        by the deadline (``wait_s``, at most the batch's ``deadline_s``) is an
        :class:`S3Late`; nothing waits longer.

        ``allowances``: the request each reference belongs to, as its allowance (one
        object per request); a reference repeated within a request is fetched once and
        its result shared, and each distinct object is spent from its request's allowance.
        """
        if not refs:
            return []
        wait_s = self._deadline_s if wait_s is None else min(wait_s, self._deadline_s)
        deadline = time.monotonic() + wait_s
        budget = ByteBudget(self._max_bytes_in_flight)
        owners = list(allowances) if allowances is not None else [None] * len(refs)
        distinct: dict[tuple[int, S3Ref], int] = {}  # (request, ref) -> its fetch
        jobs: list[tuple[S3Ref, RequestAllowance | None]] = []
        for ref, owner in zip(refs, owners):
            if distinct.setdefault((id(owner), ref), len(jobs)) == len(jobs):
                jobs.append((ref, owner))
        if any(ref.bucket in self.allowed for ref, _ in jobs):
            self._get_client()  # once, before the threads
        pool = ThreadPoolExecutor(max_workers=min(self._max_workers, len(jobs)),
                                  thread_name_prefix="s3fetch")
        try:
            futures = [pool.submit(self.fetch_one, ref, budget, deadline, owner)
                       for ref, owner in jobs]
            wait(futures, timeout=max(0.0, deadline - time.monotonic()))
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        late = [ref.uri for (ref, _), f in zip(jobs, futures) if not f.done()]
        if late:
            logger.warning("S3 deadline of %gs passed with %d of %d fetches pending (first: "
                           "%s)", wait_s, len(late), len(jobs), late[0])
        results = [f.result() if f.done() and not f.cancelled() else self._late(ref)
                   for (ref, _), f in zip(jobs, futures)]
        return [results[distinct[(id(owner), ref)]] for ref, owner in zip(refs, owners)]
