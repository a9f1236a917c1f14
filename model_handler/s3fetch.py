"""Fetch ``s3://`` image references with the instance's credentials, allowed buckets only."""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

from .codecs import S3Ref
from .errors import ImageError

logger = logging.getLogger(__name__)


class S3Fetcher:
    """Fetches objects concurrently; a bucket not in ``allowed`` is never contacted.

    The boto3 client follows boto3's standard configuration (credential chain, region,
    ``AWS_ENDPOINT_URL_S3``), so any S3-compatible server works without code changes.
    """

    def __init__(self, allowed_buckets: Sequence[str], client=None, max_workers: int = 8,
                 max_bytes: int = 64 * 1024 * 1024):
        self.allowed = frozenset(allowed_buckets)
        self._client = client
        self._max_workers = max_workers
        self._max_bytes = max_bytes

    def _get_client(self):
        if self._client is None:
            import boto3

            self._client = boto3.session.Session().client("s3")
        return self._client

    def fetch_one(self, ref: S3Ref) -> bytes | ImageError:
        if ref.bucket not in self.allowed:
            allowed = ", ".join(sorted(self.allowed)) or "none"
            return ImageError("s3_forbidden", f"bucket {ref.bucket!r} is not allowed (allowed: "
                              f"{allowed}); add it to allowed_s3_buckets in the model config")
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self._get_client().get_object(Bucket=ref.bucket, Key=ref.key)
            if response.get("ContentLength", 0) > self._max_bytes:
                return ImageError("image_too_large", f"{ref.uri} is {response['ContentLength']}"
                                  f" bytes, over {self._max_bytes}")
            return response["Body"].read()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound", "NoSuchBucket"):
                return ImageError("s3_not_found", f"{ref.uri} does not exist ({code})")
            return ImageError("s3_error", f"cannot read {ref.uri}: {code or exc}")
        except (BotoCoreError, OSError) as exc:
            return ImageError("s3_error", f"cannot read {ref.uri}: {exc}")

    def fetch_all(self, refs: Sequence[S3Ref]) -> list[bytes | ImageError]:
        """Fetch every reference (in parallel); results in the same order."""
        if not refs:
            return []
        if len(refs) == 1:
            return [self.fetch_one(refs[0])]
        with ThreadPoolExecutor(max_workers=min(self._max_workers, len(refs))) as pool:
            return list(pool.map(self.fetch_one, refs))
