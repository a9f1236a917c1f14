"""The SageMaker side of a transform: the Model it runs, and the job itself.

A transform job needs a SageMaker Model. ``TransformModel`` either names an existing one
(``--model-name``, e.g. the endpoint stack's ``ModelName`` output when its role may also
read the shards and write the results) or describes one to create from the model
artifact, the serving image and an execution role. A created model is named after a hash
of those three, so a rerun finds it instead of creating another.

Job names are derived from the batch (a hash of the frames and settings, see
``fingerprint``) plus an attempt number: ``frame-infer-<batch>-1``. A rerun asks
SageMaker for that name: a running or completed job is waited for and read, never
submitted again; only when the latest attempt failed or was stopped is the next one
created.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from model_handler.wire import JSON

from ...errors import InputError
from ...s3 import S3Location

TERMINAL = ("Completed", "Failed", "Stopped")
MAX_ATTEMPTS = 50  # job names of one batch; far more than anyone reruns a failing job
MAX_PAYLOAD_MB = 6  # the real-time limit: shards are packed under 6 MiB


@dataclass(frozen=True)
class TransformModel:
    """The SageMaker Model a job runs: ``name`` of an existing one, or ``artifact``
    (``s3://.../model.tar.gz``) + ``image_uri`` + ``role`` (execution role ARN) to create."""

    artifact: str | None = None
    image_uri: str | None = None
    role: str | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        given = [self.artifact, self.image_uri, self.role]
        if self.name and any(given):
            raise InputError("give either --model-name or --model-artifact/--image-uri/--role, "
                             "not both")
        if not self.name and not all(given):
            missing = [flag for flag, value in zip(
                ("--model-artifact", "--image-uri", "--role"), given) if not value]
            raise InputError(f"transform needs {', '.join(missing)} to create the SageMaker "
                             "model (or --model-name of an existing one)")
        if self.artifact and not self.artifact.startswith("s3://"):
            raise InputError(f"--model-artifact {self.artifact}: give the s3:// URL of "
                             "model.tar.gz (`frame-infer deploy` uploads one)")

    def model_name(self) -> str:
        """The name it has (or gets) in SageMaker."""
        if self.name:
            return self.name
        digest = hashlib.sha256(f"{self.artifact}\n{self.image_uri}\n{self.role}".encode())
        return f"frame-infer-{digest.hexdigest()[:16]}"


def _not_found(exc) -> bool:
    error = exc.response.get("Error", {})
    return error.get("Code") in ("ValidationException", "ResourceNotFound") and \
        ("Could not find" in error.get("Message", "") or "not found" in
         error.get("Message", "").lower())


def ensure_model(sagemaker, model: TransformModel) -> str:
    """The model's name, after creating it if it is described and does not exist yet."""
    from botocore.exceptions import ClientError

    name = model.model_name()
    try:
        sagemaker.describe_model(ModelName=name)
        return name
    except ClientError as exc:
        if not _not_found(exc):
            raise
        if model.name:
            raise InputError(f"SageMaker has no model {name!r} in this region: check "
                             "--model-name (the endpoint stack's ModelName output) or give "
                             "--model-artifact, --image-uri and --role") from exc
    sagemaker.create_model(ModelName=name, ExecutionRoleArn=model.role, PrimaryContainer={
        "Image": model.image_uri, "ModelDataUrl": model.artifact, "Mode": "SingleModel"})
    return name


def fingerprint(frames, etags: dict[str, str], model_name: str, settings: dict) -> str:
    """16 hex characters naming a batch: the frames to send (id, S3 key, ETag,
    timestamp), the model and the packing settings. Same inputs, same name."""
    doc = {"model": model_name, "settings": settings,
           "frames": [[f.id, f.s3_key, etags.get(f.s3_key, ""), f.timestamp] for f in frames]}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def job_name(batch: str, attempt: int) -> str:
    return f"frame-infer-{batch}-{attempt}"


def describe(sagemaker, name: str) -> dict | None:
    """``describe_transform_job``, or None when no job has that name."""
    from botocore.exceptions import ClientError

    try:
        return sagemaker.describe_transform_job(TransformJobName=name)
    except ClientError as exc:
        if _not_found(exc):
            return None
        raise


def output_location(out: S3Location, name: str) -> S3Location:
    """The job's ``S3OutputPath``: ``jobs/<job name>/`` under ``--bucket``."""
    return S3Location(out.bucket, out.key(f"jobs/{name}"))


@dataclass(frozen=True)
class JobSpec:
    """What ``create_job`` submits."""

    model_name: str
    input: S3Location
    content_type: str
    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    max_concurrent: int | None = None
    """None: the container's ``/execution-parameters`` answer decides."""


def create_job(sagemaker, name: str, spec: JobSpec, out: S3Location) -> None:
    """Submit the job: every shard one record (``SplitType`` None, ``SingleRecord``),
    at most 6 MB each, sent with the shards' multipart type; answers are JSON."""
    args = dict(
        TransformJobName=name, ModelName=spec.model_name, BatchStrategy="SingleRecord",
        MaxPayloadInMB=MAX_PAYLOAD_MB,
        TransformInput={"DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": spec.input.uri() + "/"}},
            "ContentType": spec.content_type, "SplitType": "None", "CompressionType": "None"},
        TransformOutput={"S3OutputPath": output_location(out, name).uri(), "Accept": JSON,
                         "AssembleWith": "None"},
        TransformResources={"InstanceType": spec.instance_type,
                            "InstanceCount": spec.instance_count})
    if spec.max_concurrent:
        args["MaxConcurrentTransforms"] = spec.max_concurrent
    sagemaker.create_transform_job(**args)


def current_job(sagemaker, batch: str) -> tuple[str, dict | None, list[str]]:
    """(name, description or None, earlier failed/stopped names) of the batch's latest
    attempt; the description is None when that name is free (the job is to be created)."""
    failed = []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        name = job_name(batch, attempt)
        found = describe(sagemaker, name)
        if found is None or found["TransformJobStatus"] not in ("Failed", "Stopped"):
            return name, found, failed
        failed.append(name)
    raise InputError(f"{MAX_ATTEMPTS} transform jobs of batch {batch} failed ({failed[-1]}: "
                     "see its FailureReason); fix the cause before running again")
