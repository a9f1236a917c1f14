"""Where requests go: ``make_target`` turns an endpoint spec into a target.

``http(s)://...`` -> :class:`HttpTarget` (local MMS); ``sagemaker:NAME`` ->
:class:`SageMakerTarget`; ``sagemaker-async:NAME`` -> :class:`AsyncSageMakerTarget`
(request bodies go through S3). All share ``base``'s protocol and errors.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from ...errors import InputError
from .base import (RETRYABLE_STATUS, EndpointError, RetryPolicy, Target, TransportError,
                   parse_answer)
from .http import HttpTarget
from .sagemaker import SageMakerTarget
from .sagemaker_async import AsyncSageMakerTarget

__all__ = ["RETRYABLE_STATUS", "AsyncSageMakerTarget", "EndpointError", "HttpTarget",
           "RetryPolicy", "SageMakerTarget", "Target", "TransportError", "make_target",
           "parse_answer"]

ENDPOINT_FORMS = ("http://HOST:PORT/predictions/NAME (local MMS), sagemaker:ENDPOINT_NAME "
                  "or sagemaker-async:ENDPOINT_NAME")


def make_target(spec: str, options=None) -> Target:
    """The target for ``spec``, configured from ``options`` (a ``PredictOptions``)."""
    from ..options import PredictOptions

    options = options or PredictOptions()
    kind, _, name = spec.partition(":")
    attempts, pool = options.retry.max_attempts, options.concurrency
    if kind == "sagemaker-async" and name:
        if not options.async_s3:
            raise InputError(f"--endpoint {spec!r} needs --async-s3 s3://BUCKET/PREFIX: "
                             "asynchronous endpoints read request bodies from S3")
        kwargs = {"max_payload": options.max_payload} if options.max_payload else {}
        return AsyncSageMakerTarget(name, options.async_s3, timeout=options.async_timeout,
                                    endpoint_url=options.sagemaker_endpoint_url,
                                    s3_endpoint_url=options.s3_endpoint_url,
                                    max_attempts=attempts, pool_size=pool, **kwargs)
    if spec.startswith(("http://", "https://")):
        if urlsplit(spec).path in ("", "/"):
            raise EndpointError(f"--endpoint {spec!r} has no model path: MMS serves a model "
                                f"at {spec.rstrip('/')}/predictions/NAME (`frame-infer serve` "
                                "prints the URL)")
        kwargs = {"max_payload": options.max_payload} if options.max_payload else {}
        return HttpTarget(spec, timeout=options.timeout, pool_size=pool, **kwargs)
    if kind == "sagemaker" and name:
        kwargs = {"max_payload": options.max_payload} if options.max_payload else {}
        return SageMakerTarget(name, endpoint_url=options.sagemaker_endpoint_url,
                               max_attempts=attempts, pool_size=pool, **kwargs)
    raise InputError(f"--endpoint {spec!r}: use {ENDPOINT_FORMS}")
