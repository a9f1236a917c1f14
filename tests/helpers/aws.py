"""Stand-ins for AWS on loopback: moto's server mode and boto3 clients for it."""
from __future__ import annotations

import contextlib

from frame_infer.serving.ports import free_port


@contextlib.contextmanager
def moto_server():
    """moto's server mode on a free loopback port (the stand-in for AWS), always stopped."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def s3_client_with_bucket(bucket: str):
    """A boto3 S3 client (standard configuration: use with ``aws_env``) and ``bucket``."""
    import boto3

    client = boto3.client("s3")
    if bucket not in [b["Name"] for b in client.list_buckets()["Buckets"]]:
        client.create_bucket(Bucket=bucket)
    return client


def sagemaker_client(url: str):
    """A boto3 ``sagemaker-runtime`` client for a loopback stand-in at ``url``."""
    import boto3
    from botocore.config import Config

    return boto3.client("sagemaker-runtime", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(retries={"mode": "standard", "max_attempts": 5}))
