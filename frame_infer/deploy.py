"""``frame-infer deploy``: a ``.mar`` to a SageMaker endpoint, through CloudFormation.

Pack ``model.tar.gz`` (the ``.mar`` at its top level: SageMaker unpacks it into
``/opt/ml/model``), upload it content-addressed (a new model changes ``ModelDataUrl``,
which updates the endpoint), create or update the ``infra/endpoint.yaml`` stack, wait,
check autoscaling, send one multi-image request. ``--delete`` deletes the stack (the
artifacts and the bucket stay). boto3's standard credential chain and region."""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, WaiterError

TEMPLATE = Path(__file__).resolve().parent.parent / "infra" / "endpoint.yaml"
ECR_IMAGE = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com"
                       r"(?P<cn>\.cn)?/(?P<repo>[a-z0-9._/-]+)(:[\w.-]+|@sha256:[a-f0-9]{64})$")
STACK_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")  # it names the endpoint too


class DeployError(RuntimeError):
    """The deployment failed; the message says where and what to do."""


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
    template: Path = TEMPLATE
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
        session = session or boto3.Session(region_name=region)
        if not (region or session.region_name):
            raise DeployError("no AWS region: set AWS_DEFAULT_REGION or --region")
        names = ("s3", "cloudformation", "sagemaker", "sagemaker-runtime",
                 "application-autoscaling")
        return cls(*(session.client(n, region_name=region, endpoint_url=endpoint_url)
                     for n in names))


def package_artifact(mar: Path, out_dir: Path) -> Path:
    """``out_dir/model.tar.gz`` holding ``mar`` at its top level, as SageMaker expects."""
    artifact = Path(out_dir) / "model.tar.gz"
    with tarfile.open(artifact, "w:gz") as tar:
        tar.add(mar, arcname=Path(mar).name)
    return artifact


def upload_artifact(s3, mar: Path, bucket: str, prefix: str = "models/") -> str:
    """Pack and upload ``mar``; return the ``s3://`` URL of its ``model.tar.gz``."""
    if Path(mar).suffix != ".mar" or not Path(mar).is_file():
        raise DeployError(f"{mar} is not a .mar file; build one with `frame-infer package`")
    digest = hashlib.sha256(Path(mar).read_bytes()).hexdigest()[:16]
    key = f"{prefix}{Path(mar).stem}/{digest}/model.tar.gz"
    with tempfile.TemporaryDirectory(prefix="frame-infer-deploy-") as tmp:
        s3.upload_file(str(package_artifact(mar, Path(tmp))), bucket, key)
    return f"s3://{bucket}/{key}"


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
    """CloudFormation parameters of ``infra/endpoint.yaml`` for this deployment."""
    values = {
        "ImageUri": settings.image_uri, "ImageRepositoryArn": repository_arn(settings.image_uri),
        "ModelDataUrl": model_data_url, "FramesBucket": settings.bucket,
        "InstanceType": settings.instance_type,
        "InstanceCount": str(settings.instance_count),
        "MaxInstanceCount": str(max(settings.max_instance_count, settings.instance_count)),
        "AcceleratorType": settings.accelerator_type,
        "EnableAutoScaling": "true" if settings.autoscaling else "false",
        "AsyncOutputS3Uri": settings.async_output_s3_uri.rstrip("/"),
        **settings.extra_parameters}
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


def _wait(client, waiter: str, poll_seconds: int, **kwargs) -> None:  # up to an hour
    client.get_waiter(waiter).wait(
        WaiterConfig={"Delay": poll_seconds, "MaxAttempts": max(1, 3600 // poll_seconds)},
        **kwargs)


def _stack_status(cfn, stack: str) -> str | None:
    try:
        return cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise


def _failure_reasons(cfn, stack: str) -> str:
    events = cfn.describe_stack_events(StackName=stack)["StackEvents"]
    return "; ".join(f"{e.get('LogicalResourceId')}: {e.get('ResourceStatusReason')}"
                     for e in events if str(e.get("ResourceStatus", "")).endswith("FAILED"))


def apply_stack(cfn, stack: str, template_body: str, parameters: list[dict],
                poll_seconds: int = 30) -> dict[str, str]:
    """Create or update ``stack``, wait until done and return its outputs."""
    status = _stack_status(cfn, stack)
    args = dict(StackName=stack, TemplateBody=template_body, Parameters=parameters,
                Capabilities=["CAPABILITY_IAM"])
    try:
        if status is None:
            cfn.create_stack(**args)
            _wait(cfn, "stack_create_complete", poll_seconds, StackName=stack)
        elif status == "ROLLBACK_COMPLETE" or status.endswith("_IN_PROGRESS"):
            raise DeployError(f"stack {stack} is {status}: it cannot be updated now; "
                              f"{'delete it with --delete' if 'ROLLBACK' in status else 'wait'}")
        else:
            try:
                cfn.update_stack(**args)
                _wait(cfn, "stack_update_complete", poll_seconds, StackName=stack)
            except ClientError as exc:
                if "No updates are to be performed" not in str(exc):
                    raise
    except (WaiterError, ClientError) as exc:
        raise DeployError(f"stack {stack} failed: {exc}. {_failure_reasons(cfn, stack)}") from exc
    outputs = cfn.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
    return {o["OutputKey"]: o["OutputValue"] for o in outputs}


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
    from .payload import multipart_body
    from .video import synthetic_frames

    frames = synthetic_frames(images, size=(160, 120))
    body, content_type = multipart_body([(f"frame_{i:06d}", f) for i, f in enumerate(frames)])
    try:
        raw = runtime.invoke_endpoint(EndpointName=endpoint, ContentType=content_type,
                                      Accept="application/json", Body=body)["Body"].read()
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


def delete_stack(cfn, stack: str, poll_seconds: int = 30) -> None:
    """Delete ``stack`` and wait until it is gone (a missing stack is not an error)."""
    if _stack_status(cfn, stack) is None:
        return
    cfn.delete_stack(StackName=stack)
    try:
        _wait(cfn, "stack_delete_complete", poll_seconds, StackName=stack)
    except WaiterError as exc:
        raise DeployError(f"deleting stack {stack} failed: {exc}. "
                          f"{_failure_reasons(cfn, stack)}") from exc


def deploy(settings: DeploySettings, clients: AwsClients, skip_smoke_test: str = "",
           poll_seconds: int = 30) -> dict:
    """Upload, create/update the stack, wait, check autoscaling, smoke-test (unless
    ``skip_smoke_test`` gives a reason); return a summary."""
    if not STACK_NAME.match(settings.stack):
        raise DeployError(f"stack name {settings.stack!r} also names the endpoint: use up to "
                          "63 letters, digits and hyphens, starting with a letter or digit")
    model_data_url = upload_artifact(clients.s3, settings.model, settings.bucket)
    outputs = apply_stack(clients.cloudformation, settings.stack,
                          Path(settings.template).read_text(),
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, help="the NAME.mar to deploy")
    parser.add_argument("--bucket", help="artifacts and frames (infra/storage.yaml's bucket)")
    parser.add_argument("--stack", required=True, help="stack name; also the endpoint name")
    parser.add_argument("--image-uri", help="serving image in ECR (packaging/Dockerfile)")
    parser.add_argument("--instance-type", default="ml.m5.large")
    parser.add_argument("--instance-count", type=int, default=1)
    parser.add_argument("--max-instance-count", type=int, default=4, help="autoscaling maximum")
    parser.add_argument("--accelerator-type", default="", help="Elastic Inference (retired by "
                        "AWS: only where an account still has it); empty (default) = none")
    parser.add_argument("--no-autoscaling", action="store_true")
    parser.add_argument("--async-output", default="", metavar="S3_URI",
                        help="make an asynchronous endpoint writing results here")
    parser.add_argument("--parameter", action="append", default=[], metavar="KEY=VALUE",
                        help="another infra/endpoint.yaml parameter, e.g. BatchSize=16")
    parser.add_argument("--template", type=Path, default=TEMPLATE)
    parser.add_argument("--region", help="default: boto3's (AWS_DEFAULT_REGION, profile)")
    parser.add_argument("--endpoint-url", help="send every AWS call here (an emulator)")
    parser.add_argument("--smoke-test", choices=["auto", "always", "never"], default="auto",
                        help="auto: unless --endpoint-url is given (emulators run no container)")
    parser.add_argument("--poll-seconds", type=int, default=30)
    parser.add_argument("--delete", action="store_true", help="delete the stack and exit")


def run(args: argparse.Namespace) -> int:
    try:
        clients = AwsClients.create(endpoint_url=args.endpoint_url, region=args.region)
        if args.delete:
            delete_stack(clients.cloudformation, args.stack, args.poll_seconds)
            print(f"deleted stack {args.stack} (the model artifacts stay in S3)")
            return 0
        missing = [f"--{n.replace('_', '-')}" for n in ("model", "bucket", "image_uri")
                   if not getattr(args, n)]
        if missing:
            raise DeployError(f"deploy needs {', '.join(missing)} (or --delete)")
        if any("=" not in p for p in args.parameter):
            raise DeployError(f"--parameter takes KEY=VALUE, not {args.parameter}")
        extra = dict(p.split("=", 1) for p in args.parameter)
        skip = ("--smoke-test never" if args.smoke_test == "never" else
                "--endpoint-url points at an override; an emulator cannot run the serving "
                "container (--smoke-test always runs it)"
                if args.smoke_test == "auto" and args.endpoint_url else "")
        settings = DeploySettings(
            model=args.model, bucket=args.bucket, stack=args.stack, image_uri=args.image_uri,
            instance_type=args.instance_type, instance_count=args.instance_count,
            max_instance_count=args.max_instance_count, accelerator_type=args.accelerator_type,
            autoscaling=not args.no_autoscaling, async_output_s3_uri=args.async_output,
            template=args.template, extra_parameters=extra)
        summary = deploy(settings, clients, skip_smoke_test=skip, poll_seconds=args.poll_seconds)
    except (DeployError, BotoCoreError, ClientError) as exc:
        print(f"frame-infer deploy: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2))
    return 0
