"""``frame-infer deploy`` against moto's server mode on loopback, standing in for AWS.

The emulator (moto 5.2.5, ``ThreadedMotoServer`` on 127.0.0.1) answers real boto3 calls
for S3, CloudFormation, SageMaker, SageMaker Runtime and Application Auto Scaling. It is
not AWS, and what it does not do is asserted here rather than hidden:

- its CloudFormation skips ``AWS::S3::BucketPolicy``, ``AWS::ApplicationAutoScaling::
  ScalableTarget`` and ``AWS::ApplicationAutoScaling::ScalingPolicy`` (warns, creates
  nothing, still reports CREATE_COMPLETE; async stacks add ``AWS::CloudWatch::Alarm``, skipped
  alike), applies only ``BucketEncryption`` (and tags) of
  ``AWS::S3::Bucket``, and ignores ``EndpointName`` (it generates the name);
- its endpoints are InService at once and run no container, so the smoke test cannot
  pass against it (``deploy --aws-endpoint-url`` skips it and says so).
The templates' autoscaling, bucket policy and public-access block are checked statically
in ``test_infra.py``; the serving container in ``test_sagemaker_container.py``.
"""
from __future__ import annotations

import io
import json
import re
import tarfile
import warnings

import boto3
import pytest

from frame_infer import deploy
from frame_infer.cli import main
from model_handler.wire import ASYNC_MAX_REQUEST_BYTES
from ..helpers.aws import moto_server

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/frame-infer:test"

UNSUPPORTED = "ignore:Tried to parse .* but it's not supported by moto's CloudFormation"
pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings(UNSUPPORTED)]


@pytest.fixture(scope="module")
def emulator():
    """moto's server on a free loopback port: the stand-in for AWS. Stopped at the end."""
    with moto_server() as url:
        yield url


@pytest.fixture(scope="module")
def clients(emulator) -> deploy.AwsClients:
    """boto3 clients for the emulator, from an explicit session (fake credentials)."""
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                            region_name="us-east-1")
    return deploy.AwsClients.create(session, endpoint_url=emulator)


@pytest.fixture(scope="module")
def bucket(clients) -> str:
    """The bucket of ``infra/storage.yaml``, created as a stack in the emulator."""
    outputs = deploy.apply_stack(clients.cloudformation, "fi-storage",
                                 deploy.template_text("storage.yaml"), [],
                                 poll_seconds=1)
    return outputs["BucketName"]


@pytest.fixture(scope="module")
def mar(model_store):
    return model_store / "rgb.mar"


def settings(mar, bucket, stack: str, **kw) -> deploy.DeploySettings:
    return deploy.DeploySettings(model=mar, bucket=bucket, stack=stack, image_uri=IMAGE, **kw)


def aws_client(clients, service: str):
    """Another boto3 client for the emulator, like those of ``clients``."""
    meta = clients.s3.meta
    return boto3.client(service, endpoint_url=meta.endpoint_url, region_name=meta.region_name,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def variant(clients, summary) -> dict:
    config = clients.sagemaker.describe_endpoint_config(
        EndpointConfigName=summary["outputs"]["EndpointConfigName"])
    return config["ProductionVariants"][0]


def test_emulator_skips_exactly_these_resource_types(clients, bucket, mar):
    """What moto's CloudFormation does not create, found by deploying both templates."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        deploy.apply_stack(clients.cloudformation, "fi-gaps-storage",
                           deploy.template_text("storage.yaml"), [], 1)
        deploy.deploy(settings(mar, bucket, "fi-gaps"), clients, skip_smoke_test="emulator",
                      poll_seconds=1)
    skipped = {m.group(1) for w in caught
               if (m := re.search(r"Tried to parse (\S+) but", str(w.message)))}
    assert skipped == {"AWS::S3::BucketPolicy", "AWS::ApplicationAutoScaling::ScalableTarget",
                       "AWS::ApplicationAutoScaling::ScalingPolicy"}


def test_storage_stack_bucket_is_encrypted(clients, bucket):
    """The emulator applies the bucket's encryption (the rest of storage.yaml it skips)."""
    rules = clients.s3.get_bucket_encryption(Bucket=bucket)[
        "ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"


def test_deploy_without_accelerator(clients, bucket, mar):
    """Stack created, artifact in S3 holding the .mar, endpoint InService (as moto says)."""
    summary = deploy.deploy(settings(mar, bucket, "fi-plain"), clients,
                            skip_smoke_test="the emulator runs no container", poll_seconds=1)
    assert summary["status"] == "InService"
    assert summary["outputs"]["AcceleratorType"] == "none"
    assert "AcceleratorType" not in variant(clients, summary)
    assert variant(clients, summary)["InstanceType"] == "ml.m5.large"

    _, _, key = summary["model_data_url"].partition(f"s3://{bucket}/")
    artifact = clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(artifact), mode="r:gz") as tar:
        assert tar.getnames() == ["rgb.mar"]
        assert tar.extractfile("rgb.mar").read() == mar.read_bytes()

    model = clients.sagemaker.describe_model(ModelName=summary["outputs"]["ModelName"])
    assert model["PrimaryContainer"]["ModelDataUrl"] == summary["model_data_url"]
    assert model["PrimaryContainer"]["Image"] == IMAGE
    assert model["PrimaryContainer"]["Environment"]["FRAME_INFER_BATCH_SIZE"] == "8"
    assert summary["smoke_test"] == "skipped: the emulator runs no container"
    # moto's CloudFormation creates no AWS::ApplicationAutoScaling::* resources: deploy
    # checks the registered target and reports the gap instead of claiming autoscaling.
    assert summary["autoscaling"].startswith("WARNING: requested, but no scalable target")


def test_deploy_with_accelerator_and_async_output(clients, bucket, mar):
    """AcceleratorType reaches the variant only when given (moto accepts what AWS, having
    retired Elastic Inference, is expected to refuse); async output goes to the config."""
    summary = deploy.deploy(
        settings(mar, bucket, "fi-eia", accelerator_type="ml.eia2.medium",
                 async_output_s3_uri=f"s3://{bucket}/results/"),
        clients, poll_seconds=1)
    assert summary["status"] == "InService"
    assert summary["outputs"]["AcceleratorType"] == "ml.eia2.medium"
    assert variant(clients, summary)["AcceleratorType"] == "ml.eia2.medium"
    config = clients.sagemaker.describe_endpoint_config(
        EndpointConfigName=summary["outputs"]["EndpointConfigName"])
    assert config["AsyncInferenceConfig"]["OutputConfig"]["S3OutputPath"] == \
        f"s3://{bucket}/results"
    assert summary["smoke_test"].startswith("not run: an asynchronous endpoint")


def test_async_deploy_with_notifications_and_dashboard(clients, bucket, mar):
    """--async-notifications: two SNS topics exist and reach the endpoint config with the
    concurrency cap; the dashboard (moto's CloudFormation resolves its Join/Sub/If) holds
    the backlog widget; the container names its metrics after the endpoint."""
    summary = deploy.deploy(
        settings(mar, bucket, "fi-async", async_output_s3_uri=f"s3://{bucket}/results",
                 async_notifications=True),
        clients, poll_seconds=1)
    outputs = summary["outputs"]
    topics = {t["TopicArn"] for t in aws_client(clients, "sns").list_topics()["Topics"]}
    assert {outputs["AsyncSuccessTopicArn"], outputs["AsyncErrorTopicArn"]} <= topics
    config = clients.sagemaker.describe_endpoint_config(
        EndpointConfigName=outputs["EndpointConfigName"])["AsyncInferenceConfig"]
    assert config["OutputConfig"]["NotificationConfig"] == {
        "SuccessTopic": outputs["AsyncSuccessTopicArn"],
        "ErrorTopic": outputs["AsyncErrorTopicArn"]}
    assert config["OutputConfig"]["S3FailurePath"] == f"s3://{bucket}/results/failures"
    assert config["ClientConfig"]["MaxConcurrentInvocationsPerInstance"] == 4
    model = clients.sagemaker.describe_model(ModelName=outputs["ModelName"])
    env = model["PrimaryContainer"]["Environment"]
    assert env["FRAME_INFER_ENDPOINT_NAME"] == "fi-async"
    assert env["FRAME_INFER_MAX_REQUEST_BYTES"] == str(ASYNC_MAX_REQUEST_BYTES)
    body = json.loads(aws_client(clients, "cloudwatch").get_dashboard(
        DashboardName=outputs["DashboardName"])["DashboardBody"])
    names = [m[1] for w in body["widgets"] for m in w["properties"]["metrics"]]
    assert "ApproximateBacklogSizePerInstance" in names and "ImageErrors" in names


def test_notifications_without_async_are_refused(clients, bucket, mar):
    with pytest.raises(deploy.DeployError, match="--async-notifications needs --async-output"):
        deploy.deploy(settings(mar, bucket, "fi-bad", async_notifications=True), clients)


def test_redeploy_updates_the_stack(clients, bucket, mar):
    """Deploying again with two instances updates the stack in place (same endpoint name)."""
    first = deploy.deploy(settings(mar, bucket, "fi-update", autoscaling=False), clients,
                          skip_smoke_test="emulator", poll_seconds=1)
    assert first["autoscaling"] == "disabled"
    second = deploy.deploy(settings(mar, bucket, "fi-update", autoscaling=False,
                                    instance_count=2), clients,
                           skip_smoke_test="emulator", poll_seconds=1)
    assert second["endpoint"] == first["endpoint"]
    assert variant(clients, second)["InitialInstanceCount"] == 2


def test_smoke_test_refuses_what_the_emulator_answers(clients, bucket, mar):
    """Forced against the emulator, the smoke test fails: moto runs no container (its
    InvokeEndpoint even fails on a binary multipart body), so a passing smoke test can only
    come from a real container."""
    summary = deploy.deploy(settings(mar, bucket, "fi-smoke", autoscaling=False), clients,
                            skip_smoke_test="emulator", poll_seconds=1)
    with pytest.raises(deploy.DeployError, match="smoke test: "):
        deploy.smoke_test(clients.runtime, summary["endpoint"])


def test_cli_deploy_then_delete(emulator, bucket, mar, monkeypatch, capsys):
    """`frame-infer deploy ... --aws-endpoint-url` and `--delete` through the argument parser,
    with credentials and region from the environment (boto3's standard chain)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    common = ["deploy", "--stack", "fi-cli", "--aws-endpoint-url", emulator, "--poll-seconds", "1"]
    assert main([*common, "--archive", str(mar), "--bucket", f"s3://{bucket}", "--image-uri", IMAGE,
                 "--instance-type", "ml.m5.xlarge", "--parameter", "BatchSize=16"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["smoke_test"].startswith("skipped: --aws-endpoint-url points at an override")
    sagemaker = boto3.client("sagemaker", endpoint_url=emulator)
    model = sagemaker.describe_model(ModelName=summary["outputs"]["ModelName"])
    assert model["PrimaryContainer"]["Environment"]["FRAME_INFER_BATCH_SIZE"] == "16"
    names = [e["EndpointName"] for e in sagemaker.list_endpoints()["Endpoints"]]
    assert summary["endpoint"] in names

    assert main([*common, "--delete"]) == 0
    cfn = boto3.client("cloudformation", endpoint_url=emulator)
    with pytest.raises(cfn.exceptions.ClientError, match="does not exist"):
        cfn.describe_stacks(StackName="fi-cli")
    names = [e["EndpointName"] for e in sagemaker.list_endpoints()["Endpoints"]]
    assert summary["endpoint"] not in names
    assert main([*common, "--delete"]) == 0  # already gone: fine


def test_cli_reports_missing_arguments(emulator, monkeypatch, capsys):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    assert main(["deploy", "--stack", "x", "--aws-endpoint-url", emulator]) == 2  # usage
    assert "deploy needs --archive, --bucket, --image-uri" in capsys.readouterr().err


def test_repository_arn_and_stack_name_checks(clients, bucket, mar):
    assert deploy.repository_arn(IMAGE) == \
        "arn:aws:ecr:us-east-1:123456789012:repository/frame-infer"
    assert deploy.repository_arn("210987654321.dkr.ecr.cn-north-1.amazonaws.com.cn/a/b@sha256:"
                                 + "0" * 64) == \
        "arn:aws-cn:ecr:cn-north-1:210987654321:repository/a/b"
    with pytest.raises(deploy.DeployError, match="not an ECR image"):
        deploy.repository_arn("docker.io/library/python:3.11")
    with pytest.raises(deploy.DeployError, match="also names the endpoint"):
        deploy.deploy(settings(mar, bucket, "bad_name"), clients, poll_seconds=1)
    with pytest.raises(deploy.DeployError, match="not a .mar file"):
        deploy.deploy(settings(mar.with_suffix(".onnx"), bucket, "fi-x"), clients)
