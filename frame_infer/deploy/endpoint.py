"""``frame-infer deploy``: a ``.mar`` to a SageMaker endpoint, through CloudFormation.

Pack ``model.tar.gz`` and upload it (``artifacts``), create or update the packaged
``endpoint.yaml`` stack (``stacks``), wait until the endpoint is InService, check
autoscaling, send one multi-image request. ``delete_stack`` tears it down (the
artifacts and the bucket stay). boto3's standard credential chain and region.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError, WaiterError
from model_handler.wire import JSON

from ..errors import DeployError
from .artifacts import upload_artifact
from .stacks import _wait, apply_stack, template_text

ECR_IMAGE = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com"
                       r"(?P<cn>\.cn)?/(?P<repo>[a-z0-9._/-]+)(:[\w.-]+|@sha256:[a-f0-9]{64})$")
STACK_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")  # it names the endpoint too


@dataclass
class DeploySettings:
    """One deployment: what ``frame-infer deploy`` is asked to do."""

    model: Path
    bucket: str
    stack: str
    image_uri: str
    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    max_instance_count: int = 4
    accelerator_type: str = ""
    autoscaling: bool = True
    async_output_s3_uri: str = ""
    """s3://BUCKET/PREFIX for results: an asynchronous endpoint (scales to zero)."""
    async_notifications: bool = False
    """Async only: SNS topics for successes and errors (the stack's outputs name them)."""
    template: Path | None = None
    """A CloudFormation template file; None: the packaged ``endpoint.yaml``."""
    extra_parameters: dict[str, str] = field(default_factory=dict)


@dataclass
class AwsClients:
    """The boto3 clients a deployment uses; tests pass clients for an emulator."""

    s3: Any
    cloudformation: Any
    sagemaker: Any
    runtime: Any
    autoscaling: Any

    @classmethod
    def create(cls, session=None, endpoint_url: str | None = None,
               region: str | None = None) -> "AwsClients":
        """Clients from ``session`` (default: boto3's standard credential chain)."""
        import boto3

        session = session or boto3.Session(region_name=region)
        if not (region or session.region_name):
            raise DeployError("no AWS region: set AWS_DEFAULT_REGION or --region")
        names = ("s3", "cloudformation", "sagemaker", "sagemaker-runtime",
                 "application-autoscaling")
        return cls(*(session.client(n, region_name=region, endpoint_url=endpoint_url)
                     for n in names))


def repository_arn(image_uri: str) -> str:
    """ARN of the ECR repository of ``image_uri`` (the role may pull from it only)."""
    match = ECR_IMAGE.match(image_uri)
    if not match:
        raise DeployError(f"--image-uri {image_uri} is not an ECR image "
                          "(ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY:TAG)")
    region = match["region"]
    partition = "aws-cn" if match["cn"] else "aws-us-gov" if "-gov-" in region else "aws"
    return f"arn:{partition}:ecr:{region}:{match['account']}:repository/{match['repo']}"


def stack_parameters(settings: DeploySettings, model_data_url: str) -> list[dict]:
    """CloudFormation parameters of ``endpoint.yaml`` for this deployment."""
    values = {
        "ImageUri": settings.image_uri, "ImageRepositoryArn": repository_arn(settings.image_uri),
        "ModelDataUrl": model_data_url, "FramesBucket": settings.bucket,
        "InstanceType": settings.instance_type,
        "InstanceCount": str(settings.instance_count),
        "MaxInstanceCount": str(max(settings.max_instance_count, settings.instance_count)),
        "AcceleratorType": settings.accelerator_type,
        "EnableAutoScaling": "true" if settings.autoscaling else "false",
        "AsyncOutputS3Uri": settings.async_output_s3_uri.rstrip("/"),
        "AsyncNotifications": "true" if settings.async_notifications else "false",
        **settings.extra_parameters}
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


def wait_in_service(sagemaker, endpoint: str, poll_seconds: int = 30) -> str:
    """Wait until the endpoint is InService; return its status."""
    try:
        _wait(sagemaker, "endpoint_in_service", poll_seconds, EndpointName=endpoint)
    except WaiterError as exc:
        reason = sagemaker.describe_endpoint(EndpointName=endpoint).get("FailureReason", "")
        raise DeployError(f"endpoint {endpoint} did not reach InService: {reason or exc}; see "
                          f"CloudWatch log group /aws/sagemaker/Endpoints/{endpoint}") from exc
    return sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointStatus"]


def autoscaling_target(autoscaling, endpoint: str) -> dict | None:
    """The registered scalable target of the endpoint's variant, or None."""
    found = autoscaling.describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[f"endpoint/{endpoint}/variant/AllTraffic"],
        ScalableDimension="sagemaker:variant:DesiredInstanceCount")["ScalableTargets"]
    return found[0] if found else None


def smoke_test(runtime, endpoint: str, images: int = 4) -> dict:
    """One multipart request with ``images`` JPEG frames; one prediction per frame or fail."""
    from ..client.payload import multipart_body
    from ..client.samples import synthetic_frames

    frames = synthetic_frames(images, size=(160, 120))
    body, content_type = multipart_body([(f"frame_{i:06d}", f) for i, f in enumerate(frames)])
    try:
        raw = runtime.invoke_endpoint(EndpointName=endpoint, ContentType=content_type,
                                      Accept=JSON, Body=body)["Body"].read()
        predictions = json.loads(raw)["predictions"]
    except ClientError as exc:
        raise DeployError(f"smoke test: invoking endpoint {endpoint} failed: {exc}") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise DeployError(f"smoke test: endpoint {endpoint} answered {raw[:200]!r}, not the "
                          "predictions JSON") from exc
    bad = [p for p in predictions if "label" not in p]
    if len(predictions) != images or bad:
        raise DeployError(f"smoke test: {images} frames sent, {len(predictions)} answers, "
                          f"failures: {bad}")
    return {"images": images, "labels": [p["label"] for p in predictions]}


def deploy(settings: DeploySettings, clients: AwsClients, skip_smoke_test: str = "",
           poll_seconds: int = 30) -> dict:
    """Upload, create/update the stack, wait, check autoscaling, smoke-test (unless
    ``skip_smoke_test`` gives a reason); return a summary."""
    if settings.async_notifications and not settings.async_output_s3_uri:
        raise DeployError("--async-notifications needs --async-output S3_URI: only "
                          "asynchronous endpoints notify")
    if not STACK_NAME.match(settings.stack):
        raise DeployError(f"stack name {settings.stack!r} also names the endpoint: use up to "
                          "63 letters, digits and hyphens, starting with a letter or digit")
    model_data_url = upload_artifact(clients.s3, settings.model, settings.bucket)
    outputs = apply_stack(clients.cloudformation, settings.stack,
                          (Path(settings.template).read_text() if settings.template
                           else template_text("endpoint.yaml")),
                          stack_parameters(settings, model_data_url), poll_seconds)
    endpoint = outputs["EndpointName"]
    summary = {"stack": settings.stack, "endpoint": endpoint, "model_data_url": model_data_url,
               "outputs": outputs,
               "status": wait_in_service(clients.sagemaker, endpoint, poll_seconds)}
    target = autoscaling_target(clients.autoscaling, endpoint)
    summary["autoscaling"] = (
        f"{target['MinCapacity']}-{target['MaxCapacity']} instances" if target
        else "WARNING: requested, but no scalable target is registered" if settings.autoscaling
        else "disabled")
    summary["smoke_test"] = (
        "not run: an asynchronous endpoint takes S3 inputs" if settings.async_output_s3_uri
        else f"skipped: {skip_smoke_test}" if skip_smoke_test
        else smoke_test(clients.runtime, endpoint))
    return summary
