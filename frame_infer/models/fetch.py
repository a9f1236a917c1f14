"""Fetch the real FER+ model from the ONNX model zoo, checksum-verified (needs internet).

The zoo publishes ``emotion-ferplus-8.tar.gz`` through Git LFS; its SHA-256 and size
below are the ones recorded in the zoo's LFS pointer. The archive holds
``emotion_ferplus/model.onnx``. Tests never call this.
"""
from __future__ import annotations

import hashlib
import shutil
import tarfile
import tempfile
import urllib.request
from pathlib import Path

from ..errors import ChecksumError  # noqa: F401 (re-exported)

FERPLUS_URL = ("https://github.com/onnx/models/raw/main/validated/vision/body_analysis/"
               "emotion_ferplus/model/emotion-ferplus-8.tar.gz")
FERPLUS_SHA256 = "2941173471d94d9b9592260573c4d313ca3c312a20fd40b90f9c01886d6e08d6"
FERPLUS_SIZE = 32384491


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, sha256: str = FERPLUS_SHA256, size: int = FERPLUS_SIZE) -> None:
    actual_size = path.stat().st_size
    if actual_size != size:
        raise ChecksumError(f"{path} is {actual_size} bytes, expected {size}: incomplete or "
                            "wrong download; delete it and fetch again")
    actual = sha256_of(path)
    if actual != sha256:
        raise ChecksumError(f"{path} has SHA-256 {actual}, expected {sha256}: do not use it")


def extract_model(archive: Path, out: Path) -> Path:
    """Copy the one ``.onnx`` member of the zoo archive to ``out`` (no path traversal)."""
    with tarfile.open(archive, "r:gz") as tar:
        members = [m for m in tar.getmembers() if m.isfile() and m.name.endswith(".onnx")]
        if len(members) != 1:
            raise ChecksumError(f"{archive} holds {len(members)} .onnx files, expected 1")
        out.parent.mkdir(parents=True, exist_ok=True)
        with tar.extractfile(members[0]) as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return out


def fetch_ferplus(out: Path, url: str = FERPLUS_URL) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "emotion-ferplus-8.tar.gz"
        with urllib.request.urlopen(url, timeout=120) as resp, open(archive, "wb") as f:
            shutil.copyfileobj(resp, f)
        verify(archive)
        return extract_model(archive, out)
