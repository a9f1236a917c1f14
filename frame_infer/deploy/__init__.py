"""Deployment to SageMaker: artifacts in S3, CloudFormation stacks, the endpoint.

Runs on an operator's machine (the ``deploy`` extra: boto3); nothing here runs in the
serving container.
"""
from __future__ import annotations

from ..errors import DeployError
from .artifacts import package_artifact, upload_artifact
from .endpoint import (AwsClients, DeploySettings, autoscaling_target, deploy, repository_arn,
                       smoke_test, stack_parameters, wait_in_service)
from .stacks import TEMPLATES, apply_stack, delete_stack, template_text

__all__ = ["AwsClients", "DeployError", "DeploySettings", "TEMPLATES", "apply_stack",
           "autoscaling_target", "delete_stack", "deploy", "package_artifact",
           "repository_arn", "smoke_test", "stack_parameters", "template_text",
           "upload_artifact", "wait_in_service"]
