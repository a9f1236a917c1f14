"""The CloudFormation templates (packaged in ``frame_infer/deploy/templates``, linked from
``infra/``): cfn-lint, and the properties that matter.

cfn-lint runs as a subprocess from the venv (as ``make test`` would). The property checks
read the templates with cfn-lint's YAML loader (intrinsic functions as plain dicts) and
assert what no linter knows: the accelerator is optional, access is least-privilege, the
bucket is private and TLS-only, autoscaling tracks invocations per instance (real-time) or
the backlog down to zero instances (async), async limits equal the client's, the
dashboard's JSON reads the right metrics.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cfnlint.decode import cfn_yaml

from frame_infer import deploy
from model_handler import wire

INFRA = Path(__file__).resolve().parents[2] / "infra"
TEMPLATES = sorted(INFRA.glob("*.yaml"))
CFN_LINT = Path(sys.executable).parent / "cfn-lint"
NO_VALUE = {"Ref": "AWS::NoValue"}


def load(name: str) -> dict:
    return cfn_yaml.load(str(INFRA / name))


def lint(path: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(CFN_LINT), *options, "--", str(path)], capture_output=True,
                          text=True, timeout=300)


def statements(template: dict):
    """Every IAM/bucket policy statement, with ``Fn::If`` branches unwrapped."""
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        docs = [p["PolicyDocument"] for p in props.get("Policies", [])]
        docs += [props[k] for k in ("PolicyDocument", "AssumeRolePolicyDocument") if k in props]
        for doc in docs:
            for stmt in doc["Statement"]:
                if "Fn::If" in stmt:
                    yield from (s for s in stmt["Fn::If"][1:] if s != NO_VALUE)
                else:
                    yield stmt


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def test_there_are_templates():
    assert {p.name for p in TEMPLATES} >= {"storage.yaml", "endpoint.yaml"}


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_cfn_lint_passes(template):
    result = lint(template, "--include-checks", "I")
    assert result.returncode == 0, result.stdout + result.stderr


def test_lint_suppression_hides_only_the_accelerator(tmp_path):
    """EndpointConfig suppresses E3002 because CloudFormation's current schema no longer
    lists AcceleratorType; without the suppression that must be the only finding."""
    text = (INFRA / "endpoint.yaml").read_text()
    start = text.index("    Metadata:\n", text.index("  EndpointConfig:"))
    end = text.index("    Properties:\n", start)
    unsuppressed = tmp_path / "endpoint.yaml"
    unsuppressed.write_text(text[:start] + text[end:])
    findings = json.loads(lint(unsuppressed, "--format", "json").stdout)
    assert findings, "cfn-lint now accepts AcceleratorType: drop the suppression"
    assert {f["Rule"]["Id"] for f in findings} == {"E3002"}
    assert all("AcceleratorType" in f["Message"] for f in findings), findings


def test_accelerator_is_optional():
    template = load("endpoint.yaml")
    assert template["Parameters"]["AcceleratorType"]["Default"] == ""
    assert "" in template["Parameters"]["AcceleratorType"]["AllowedValues"]
    assert template["Conditions"]["HasAccelerator"] == \
        {"Fn::Not": [{"Fn::Equals": [{"Ref": "AcceleratorType"}, ""]}]}
    variant, = template["Resources"]["EndpointConfig"]["Properties"]["ProductionVariants"]
    assert variant["AcceleratorType"] == \
        {"Fn::If": ["HasAccelerator", {"Ref": "AcceleratorType"}, NO_VALUE]}
    assert variant["InstanceType"] == {"Ref": "InstanceType"}
    assert variant["InitialInstanceCount"] == {"Ref": "InstanceCount"}


def test_async_inference_is_optional_and_may_write_only_its_output():
    template = load("endpoint.yaml")
    assert template["Parameters"]["AsyncOutputS3Uri"]["Default"] == ""
    config = template["Resources"]["EndpointConfig"]["Properties"]["AsyncInferenceConfig"]
    assert config["Fn::If"][0] == "HasAsync" and config["Fn::If"][2] == NO_VALUE
    output = config["Fn::If"][1]["OutputConfig"]
    # Failures land under the output prefix, which the role may write to (the client reads
    # FailureLocation; without it a rejected request is only a timeout).
    assert output["S3FailurePath"] == {"Fn::Sub": "${AsyncOutputS3Uri}/failures"}
    writes = [s for s in statements(template) if "s3:PutObject" in as_list(s["Action"])]
    assert [s["Sid"] for s in writes] == ["WriteAsyncResults"]


def test_scaling_conditions_split_real_time_from_async():
    conditions = load("endpoint.yaml")["Conditions"]
    assert conditions["RealTimeScaling"] == {"Fn::And": [
        {"Condition": "ScalingEnabled"}, {"Fn::Not": [{"Condition": "HasAsync"}]}]}
    assert conditions["AsyncScaling"] == {"Fn::And": [
        {"Condition": "ScalingEnabled"}, {"Condition": "HasAsync"}]}
    assert conditions["HasNotifications"] == {"Fn::And": [
        {"Condition": "HasAsync"}, {"Fn::Equals": [{"Ref": "AsyncNotifications"}, "true"]}]}


def test_autoscaling_tracks_invocations_per_instance():
    resources = load("endpoint.yaml")["Resources"]
    target, policy = resources["ScalableTarget"], resources["ScalingPolicy"]
    assert target["Condition"] == "ScalingEnabled"
    assert policy["Condition"] == "RealTimeScaling"  # async endpoints scale on the backlog
    assert target["Properties"]["ResourceId"] == \
        {"Fn::Sub": "endpoint/${Endpoint.EndpointName}/variant/AllTraffic"}
    assert target["Properties"]["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert target["Properties"]["MinCapacity"] == \
        {"Fn::If": ["HasAsync", 0, {"Ref": "InstanceCount"}]}
    tracking = policy["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    assert policy["Properties"]["PolicyType"] == "TargetTrackingScaling"
    assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == \
        "SageMakerVariantInvocationsPerInstance"
    assert policy["Properties"]["ScalingTargetId"] == {"Ref": "ScalableTarget"}


ENDPOINT_DIMENSION = [{"Name": "EndpointName", "Value": {"Fn::GetAtt": [
    "Endpoint", "EndpointName"]}}]


def test_async_scales_on_backlog_to_zero_and_wakes_on_backlog_without_capacity():
    """AWS's recipe for async endpoints ("Autoscale an asynchronous endpoint"): target
    tracking on ApproximateBacklogSizePerInstance with MinCapacity 0, and a step policy
    adding one instance when the HasBacklogWithoutCapacity alarm fires."""
    resources = load("endpoint.yaml")["Resources"]
    tracking, wake = resources["BacklogScalingPolicy"], resources["WakeFromZeroPolicy"]
    alarm = resources["BacklogWithoutCapacityAlarm"]
    assert tracking["Condition"] == wake["Condition"] == alarm["Condition"] == "AsyncScaling"
    assert tracking["Properties"]["PolicyType"] == "TargetTrackingScaling"
    assert tracking["Properties"]["ScalingTargetId"] == {"Ref": "ScalableTarget"}
    config = tracking["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    assert config["TargetValue"] == {"Ref": "TargetBacklogPerInstance"}
    assert config["CustomizedMetricSpecification"] == {
        "Namespace": "AWS/SageMaker", "MetricName": "ApproximateBacklogSizePerInstance",
        "Dimensions": ENDPOINT_DIMENSION, "Statistic": "Average"}
    assert "DisableScaleIn" not in config  # scaling in is what reaches zero

    assert wake["Properties"]["PolicyType"] == "StepScaling"
    assert wake["Properties"]["ScalingTargetId"] == {"Ref": "ScalableTarget"}
    step = wake["Properties"]["StepScalingPolicyConfiguration"]
    assert step["AdjustmentType"] == "ChangeInCapacity"
    assert step["StepAdjustments"] == [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]

    props = alarm["Properties"]
    assert (props["Namespace"], props["MetricName"]) == \
        ("AWS/SageMaker", "HasBacklogWithoutCapacity")
    assert props["Dimensions"] == ENDPOINT_DIMENSION
    assert (props["ComparisonOperator"], props["Threshold"]) == \
        ("GreaterThanOrEqualToThreshold", 1)
    assert props["AlarmActions"] == [{"Ref": "WakeFromZeroPolicy"}]


def test_async_notifications_are_optional_and_the_only_topics_the_role_may_publish_to():
    template = load("endpoint.yaml")
    assert template["Parameters"]["AsyncNotifications"]["Default"] == "false"
    resources = template["Resources"]
    for name in ("AsyncSuccessTopic", "AsyncErrorTopic"):
        assert resources[name]["Type"] == "AWS::SNS::Topic"
        assert resources[name]["Condition"] == "HasNotifications"
    config = resources["EndpointConfig"]["Properties"]["AsyncInferenceConfig"]["Fn::If"][1]
    assert config["OutputConfig"]["NotificationConfig"] == {"Fn::If": [
        "HasNotifications", {"SuccessTopic": {"Ref": "AsyncSuccessTopic"},
                             "ErrorTopic": {"Ref": "AsyncErrorTopic"}}, NO_VALUE]}
    assert config["ClientConfig"] == {"MaxConcurrentInvocationsPerInstance": {
        "Ref": "AsyncMaxConcurrentInvocationsPerInstance"}}
    publish = [s for s in statements(template) if "sns:Publish" in as_list(s["Action"])]
    assert len(publish) == 1 and publish[0]["Action"] == "sns:Publish"
    assert publish[0]["Resource"] == [{"Ref": "AsyncSuccessTopic"}, {"Ref": "AsyncErrorTopic"}]
    policy = resources["ExecutionRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    guarded = [s["Fn::If"] for s in policy["Statement"] if "Fn::If" in s]
    assert ["HasNotifications", publish[0], NO_VALUE] in guarded


def test_async_container_limits_are_the_clients():
    """One number per limit in model_handler/wire.py: the async container accepts what the
    client sends and runs as long as the client's InvocationTimeoutSeconds allows."""
    env = load("endpoint.yaml")["Resources"]["Model"]["Properties"]["PrimaryContainer"][
        "Environment"]
    assert env["FRAME_INFER_MAX_REQUEST_BYTES"] == {"Fn::If": [
        "HasAsync", str(wire.ASYNC_MAX_REQUEST_BYTES), str(wire.MMS_MAX_REQUEST_BYTES)]}
    assert env["SAGEMAKER_MODEL_SERVER_TIMEOUT"] == {"Fn::If": [
        "HasAsync", str(wire.ASYNC_INVOCATION_TIMEOUT_S), "60"]}
    assert wire.ASYNC_MAX_REQUEST_BYTES <= wire.SAGEMAKER_ASYNC_MAX_REQUEST_BYTES
    assert wire.ASYNC_INVOCATION_TIMEOUT_S <= 3600  # InvokeEndpointAsync's maximum
    # The EMF metrics' EndpointName dimension is the endpoint's name, i.e. the stack's.
    assert env["FRAME_INFER_ENDPOINT_NAME"] == {"Ref": "AWS::StackName"}
    endpoint = load("endpoint.yaml")["Resources"]["Endpoint"]["Properties"]
    assert endpoint["EndpointName"] == {"Ref": "AWS::StackName"}


def resolve(value, conditions: dict[str, bool], names: dict[str, str]):
    """The string a Join/Sub/If expression of plain strings evaluates to."""
    if isinstance(value, str):
        return value
    (function, args), = value.items()
    if function == "Fn::Join":
        return args[0].join(resolve(v, conditions, names) for v in args[1])
    if function == "Fn::If":
        return resolve(args[1] if conditions[args[0]] else args[2], conditions, names)
    if function == "Fn::Sub":
        text = args
        for name, replacement in names.items():
            text = text.replace("${%s}" % name, replacement)
        assert "${" not in text, text
        return text
    raise AssertionError(f"unexpected {function}")


@pytest.mark.parametrize("is_async", [False, True], ids=["real-time", "async"])
def test_dashboard_reads_invocations_latency_image_errors_and_backlog(is_async):
    """The body is valid JSON in both branches; widgets read SageMaker's metrics and the
    container's FrameInfer (EMF) metrics for this endpoint; the backlog only when async."""
    dashboard = load("endpoint.yaml")["Resources"]["Dashboard"]["Properties"]
    body = json.loads(resolve(dashboard["DashboardBody"], {"HasAsync": is_async},
                              {"AWS::Region": "eu-west-1", "AWS::StackName": "fi-x"}))
    metrics = {(m[0], m[1]): m[2:4] for w in body["widgets"]
               for m in w["properties"]["metrics"]}
    assert all(w["properties"]["region"] == "eu-west-1" for w in body["widgets"])
    assert set(map(tuple, metrics.values())) == {("EndpointName", "fi-x")}
    wanted = {("AWS/SageMaker", "Invocations"), ("AWS/SageMaker", "ModelLatency"),
              ("FrameInfer", "Images"), ("FrameInfer", "ImageErrors"),
              ("FrameInfer", "InferenceLatency")}
    backlog = {("AWS/SageMaker", "ApproximateBacklogSizePerInstance"),
               ("AWS/SageMaker", "HasBacklogWithoutCapacity")}
    assert wanted <= set(metrics)
    assert (backlog <= set(metrics)) is is_async
    assert not backlog & set(metrics) or is_async


def test_role_is_least_privilege():
    template = load("endpoint.yaml")
    role = template["Resources"]["ExecutionRole"]["Properties"]
    trust, = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert trust["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    allowed = [s for s in statements(template) if s["Effect"] == "Allow" and "Sid" in s]
    by_sid = {s["Sid"]: s for s in allowed}
    for stmt in allowed:
        for action in as_list(stmt["Action"]):
            assert action != "*" and not action.endswith(":*"), stmt
        if "*" in as_list(stmt["Resource"]):  # only where AWS has no resource-level control
            assert as_list(stmt["Action"]) in (["ecr:GetAuthorizationToken"],
                                               ["cloudwatch:PutMetricData"]), stmt
    assert by_sid["WriteEndpointMetrics"]["Condition"] == \
        {"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/Endpoints"}}
    model_read = by_sid["ReadModelArtifact"]
    assert model_read["Action"] == "s3:GetObject"
    assert model_read["Resource"]["Fn::Sub"][1]["ObjectPath"] == \
        {"Fn::Select": [1, {"Fn::Split": ["s3://", {"Ref": "ModelDataUrl"}]}]}
    assert by_sid["ReadFrames"]["Resource"] == \
        {"Fn::Sub": "arn:${AWS::Partition}:s3:::${FramesBucket}/${FramesPrefix}*"}
    assert by_sid["PullServingImage"]["Resource"] == {"Ref": "ImageRepositoryArn"}
    for resource in as_list(by_sid["WriteEndpointLogs"]["Resource"]):
        assert "/aws/sagemaker/Endpoints/${AWS::StackName}" in resource["Fn::Sub"]


def test_bucket_is_private_encrypted_tls_only_and_expires_frames():
    resources = load("storage.yaml")["Resources"]
    bucket = resources["Bucket"]["Properties"]
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    sse = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    expire = [r for r in bucket["LifecycleConfiguration"]["Rules"] if r["Id"] == "ExpireFrames"]
    assert expire[0]["Prefix"] == {"Ref": "FramesPrefix"}
    assert expire[0]["ExpirationInDays"] == {"Ref": "FramesExpirationDays"}
    policy = resources["BucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    tls = [s for s in policy if s["Effect"] == "Deny"
           and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"]
    assert tls and tls[0]["Action"] == "s3:*"
    assert all(s["Effect"] == "Deny" for s in policy), "the bucket policy grants nothing"


def test_no_permissive_defaults_anywhere():
    for path in TEMPLATES:
        text = path.read_text()
        assert "0.0.0.0/0" not in text and "::/0" not in text
        assert "PublicRead" not in text
        for stmt in statements(cfn_yaml.load(str(path))):
            if stmt["Effect"] == "Allow":
                assert stmt.get("Principal") != "*", (path.name, stmt)


def test_deploy_parameters_exist_in_the_template():
    """frame-infer deploy passes only parameters the template declares."""
    settings = deploy.DeploySettings(model=Path("m.mar"), bucket="frames-bucket", stack="s",
                                     image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1")
    passed = {p["ParameterKey"] for p in deploy.stack_parameters(settings, "s3://b/k")}
    declared = load("endpoint.yaml")["Parameters"]
    assert passed <= set(declared)
    assert {k for k, v in declared.items() if "Default" not in v} <= passed


@pytest.mark.parametrize("name", deploy.TEMPLATES)
def test_infra_copies_are_the_packaged_templates(name):
    """One source of truth: infra/ holds links to the templates the package ships."""
    assert (INFRA / name).read_text() == deploy.template_text(name)
    assert (INFRA / name).resolve() == (INFRA.parent / "frame_infer" / "deploy" / "templates"
                                        / name).resolve()
