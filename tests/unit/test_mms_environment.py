"""What ``LocalMMS`` hands its Java server and, through it, every Python worker."""
from __future__ import annotations

from frame_infer.serving.mms import LocalMMS, ServerSettings


def environment(tmp_path, monkeypatch, extra=None, **outer) -> dict[str, str]:
    for name in ("OMP_WAIT_POLICY", "MMS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in outer.items():
        monkeypatch.setenv(name, value)
    server = LocalMMS(ServerSettings(model_store=tmp_path, port=20001, management_port=20002,
                                     run_dir=tmp_path / "run", extra_env=extra or {}))
    return server.environment(threads=2)


def test_openmp_threads_sleep_between_batches_unless_the_operator_says_otherwise(
        tmp_path, monkeypatch):
    """Spinning OpenMP threads of an idle MXNet worker take the cores a client on the same
    machine needs (benchmarks/NOTES.md); an operator's own choice is kept."""
    env = environment(tmp_path, monkeypatch)
    assert env["OMP_WAIT_POLICY"] == "PASSIVE" and env["OMP_NUM_THREADS"] == "2"
    assert environment(tmp_path, monkeypatch, OMP_WAIT_POLICY="ACTIVE")["OMP_WAIT_POLICY"] == \
        "ACTIVE"
    assert environment(tmp_path, monkeypatch, extra={"OMP_WAIT_POLICY": "ACTIVE"})[
        "OMP_WAIT_POLICY"] == "ACTIVE"


def test_a_config_file_of_the_environment_cannot_replace_ours(tmp_path, monkeypatch):
    env = environment(tmp_path, monkeypatch, MMS_CONFIG_FILE="/etc/other.properties")
    assert "MMS_CONFIG_FILE" not in env
