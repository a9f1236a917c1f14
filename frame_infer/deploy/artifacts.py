"""The model artifact SageMaker loads: ``model.tar.gz`` holding the ``.mar``, in S3.

SageMaker unpacks ``ModelDataUrl`` into ``/opt/ml/model``; the serving container
(``frame_infer.serving.container``) finds the ``.mar`` there. Uploads are
content-addressed: a new model changes ``ModelDataUrl``, which updates the endpoint.
"""
from __future__ import annotations

import hashlib
import tarfile
import tempfile
from pathlib import Path

from ..errors import DeployError


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
