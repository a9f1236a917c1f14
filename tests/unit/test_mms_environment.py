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


def test_java_compiles_with_c1_only_and_the_operator_may_add_options(tmp_path, monkeypatch):
    """C2's compile threads took 0.2-0.3 s of CPU per 600 frames from the workers
    (benchmarks/NOTES.md). An operator's options come after ours, so theirs win."""
    monkeypatch.delenv("FRAME_INFER_JAVA_OPTIONS", raising=False)

    def command(extra=None) -> list[str]:
        server = LocalMMS(ServerSettings(model_store=tmp_path, port=20001,
                                         management_port=20002, run_dir=tmp_path / "run",
                                         extra_env=extra or {}))
        cmd = server.command(tmp_path / "config.properties")
        return cmd[:cmd.index("com.amazonaws.ml.mms.ModelServer")]

    assert "-XX:TieredStopAtLevel=1" in command()
    monkeypatch.setenv("FRAME_INFER_JAVA_OPTIONS", "-XX:TieredStopAtLevel=4 -Dx='a b'")
    jvm = command()
    assert jvm.index("-XX:TieredStopAtLevel=4") > jvm.index("-XX:TieredStopAtLevel=1")
    assert "-Dx=a b" in jvm
    assert "-XX:+UseSerialGC" in command({"FRAME_INFER_JAVA_OPTIONS": "-XX:+UseSerialGC"})
