"""CloudFormation stacks: the packaged templates, create-or-update, wait, delete.

The templates ship inside the package (``frame_infer/deploy/templates/``), so an
installed ``frame-infer deploy`` finds them; ``infra/`` holds links to the same files
for readers and for cfn-lint.
"""
from __future__ import annotations

from importlib import resources

from botocore.exceptions import ClientError, WaiterError

from ..errors import DeployError

TEMPLATES = ("endpoint.yaml", "storage.yaml")


def template_text(name: str = "endpoint.yaml") -> str:
    """The text of a packaged CloudFormation template (``endpoint.yaml``, ``storage.yaml``)."""
    if name not in TEMPLATES:
        raise DeployError(f"no packaged template {name!r}; choose one of {', '.join(TEMPLATES)}")
    return (resources.files(__package__) / "templates" / name).read_text(encoding="utf-8")


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
