"""The client side's one S3 module: URIs and clients that follow boto3's standard configuration.

Clients come from a boto3 Session, so the credential chain, region and
``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` work unchanged; an explicit
``endpoint_url`` (the ``--s3-endpoint-url`` flags) only adds to that. URIs are split by
``model_handler.wire.split_s3_uri``, the same function the service uses.
"""
from __future__ import annotations

from dataclasses import dataclass

from model_handler.wire import split_s3_uri

from .errors import InputError


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str  # no leading slash; "" or ending without "/"

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def uri(self, name: str = "") -> str:
        key = self.key(name) if name else self.prefix
        return f"s3://{self.bucket}/{key}"

    def child(self, name: str) -> "S3Location":
        """The location ``name`` below this one (``s3://b/job`` -> ``s3://b/job/frames``)."""
        return S3Location(self.bucket, self.key(name.strip("/")))


def parse_s3_uri(uri: "str | S3Location") -> S3Location:
    """``s3://bucket/some/prefix/`` -> S3Location("bucket", "some/prefix"); a location
    is returned as it is (parsed once at the edge, passed down)."""
    if isinstance(uri, S3Location):
        return uri
    parts = split_s3_uri(uri)
    if parts is None:
        raise InputError(f"{uri!r} is not an S3 URI: write s3://bucket/prefix")
    bucket, prefix = parts
    if not bucket:
        raise InputError(f"{uri!r} has no bucket: write s3://bucket/prefix")
    return S3Location(bucket, prefix.strip("/"))


def make_client(service: str, endpoint_url: str | None = None, config=None, session=None):
    """A boto3 client; ``endpoint_url`` overrides the standard configuration when given."""
    import boto3

    session = session or boto3.session.Session()
    kwargs = {}
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    if config is not None:
        kwargs["config"] = config
    return session.client(service, **kwargs)
