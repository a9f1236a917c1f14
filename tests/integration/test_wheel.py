"""The wheel a user installs, not the editable checkout the other tests import.

The wheel is built from the repository's files (tracked and new, not ignored: what a
clean clone holds) and installed without dependencies into fresh venvs. Third-party
packages come from this test run's own environment through a path entry, so no
download happens; the serving venv blocks the client's packages (PyAV, matplotlib,
tqdm), as the serving image (`pip install '.[serving]'`) does not have them.
"""
from __future__ import annotations

import email
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from ..helpers.aws import moto_server

ROOT = Path(__file__).resolve().parents[2]
CLIENT_ONLY = ("av", "matplotlib", "tqdm")
BLOCKER = """\
import sys
class _NotInstalled:
    # Stands for a package missing from this venv (the serving image lacks the client's).
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {names!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, _NotInstalled())
"""


def _run(*cmd, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300,
                          **kwargs)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """frame-infer's wheel, built from a copy of the repository's files."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: cannot tell the repository's files")
    work = tmp_path_factory.mktemp("wheel")
    listed = _run("git", "-C", ROOT, "ls-files", "-z", "--cached", "--others",
                  "--exclude-standard")
    assert listed.returncode == 0, listed.stderr
    source = work / "src"
    for name in filter(None, listed.stdout.split("\0")):
        src, dest = ROOT / name, source / name
        if not src.exists() and not src.is_symlink():
            continue  # deleted in the working tree, not yet committed
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), dest)
        else:
            shutil.copy2(src, dest)
    built = _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                 "--quiet", "-w", work / "dist", source)
    assert built.returncode == 0, built.stderr
    (found,) = (work / "dist").glob("frame_infer-*.whl")
    return found


def _venv(where: Path, wheel: Path, blocked: tuple[str, ...] = ()) -> Path:
    """A fresh venv with the wheel installed (no dependencies) and this run's packages
    visible after its own; returns its bin folder."""
    venv.EnvBuilder(with_pip=False).create(where)
    python = where / "bin" / "python"
    installed = _run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps",
                     "--no-index", "--quiet", wheel)
    assert installed.returncode == 0, installed.stderr
    site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
                .stdout.strip())
    (site / "zz_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    if blocked:
        (site / "_blocker.py").write_text(BLOCKER.format(names=set(blocked)))
        (site / "aa_blocker.pth").write_text("import _blocker\n")
    return where / "bin"


def test_wheel_holds_the_packages_and_templates_and_declares_extras(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        meta = email.message_from_string(archive.read(metadata).decode())
    assert {"frame_infer/deploy/templates/endpoint.yaml",
            "frame_infer/deploy/templates/storage.yaml", "model_handler/service.py",
            "model_handler/wire.py", "frame_infer/cli/__init__.py",
            "frame_infer/client/data/astronaut-face.png",
            "frame_infer/client/data/README.md"} <= names
    assert not any(n.startswith(("tests/", "packaging/", "benchmarks/")) for n in names)
    requires = meta.get_all("Requires-Dist")
    extras = {r.split("extra ==")[1].strip(' "\'') for r in requires if "extra ==" in r}
    assert {"serving", "models", "client", "deploy"} <= extras
    for package, extra in [("av", "client"), ("mxnet", "serving"), ("model-archiver", "models")]:
        lines = [r for r in requires if r.startswith(package)]
        assert lines and all(f'extra == "{extra}"' in r for r in lines), (package, lines)


def test_serving_only_install_runs_help_and_the_container_entrypoint(wheel, tmp_path):
    bin_dir = _venv(tmp_path / "serving", wheel, blocked=CLIENT_ONLY)

    def run(*cmd):  # away from the checkout: `python -c` would import the source tree
        return _run(*cmd, cwd=tmp_path)

    python = bin_dir / "python"
    probe = run(python, "-c", "import av")
    assert probe.returncode != 0 and "No module named 'av'" in probe.stderr  # blocker works
    for args in (["--help"], ["serve", "--help"], ["--version"]):
        result = run(bin_dir / "frame-infer", *args)
        assert result.returncode == 0, result.stderr
    assert "frame-infer serve" in run(bin_dir / "frame-infer", "serve", "--help").stdout
    where = run(python, "-c", "import frame_infer.serving.container, frame_infer.cli.serve, "
                 "frame_infer; print(frame_infer.__file__)")
    assert where.returncode == 0, where.stderr
    assert where.stdout.strip().startswith(str(tmp_path / "serving"))  # the wheel, not src
    missing = run(bin_dir / "frame-infer", "extract", "clip.mp4", "--out", tmp_path / "f")
    assert missing.returncode == 5  # ExitCode.ENVIRONMENT: install the extra
    assert "needs the 'client' extra: pip install 'frame-infer[client]'" in missing.stderr


def test_client_and_deploy_install_deploys_with_the_packaged_template(wheel, tmp_path,
                                                                       model_store):
    """`frame-infer deploy` from the installed wheel against moto's CloudFormation."""
    import boto3

    bin_dir = _venv(tmp_path / "client", wheel)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1"}
    env.pop("AWS_PROFILE", None)
    with moto_server() as url:
        boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                     aws_access_key_id="testing",
                     aws_secret_access_key="testing").create_bucket(Bucket="wheel-frames")
        result = _run(bin_dir / "frame-infer", "deploy", "--archive", model_store / "rgb.mar",
                      "--bucket", "s3://wheel-frames", "--stack", "fi-wheel", "--image-uri",
                      "123456789012.dkr.ecr.us-east-1.amazonaws.com/frame-infer:test",
                      "--aws-endpoint-url", url, "--poll-seconds", "1", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["stack"] == "fi-wheel" and summary["endpoint"].startswith("fi-wheel")
    assert summary["model_data_url"].startswith("s3://wheel-frames/models/rgb/")
