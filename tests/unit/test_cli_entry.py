"""``frame_infer.cli.entry``, the console script: after ``main`` it skips Python's
module teardown (``os._exit``) but still flushes every byte of output, runs the atexit
handlers and keeps the exit code; usage errors and crashes end the usual way."""
from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import atexit, sys
atexit.register(lambda: sys.stderr.write("atexit ran\\n"))
sys.argv = ["frame-infer", *sys.argv[1:]]
from frame_infer.cli import entry
entry()
"""


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True,
                          text=True, timeout=120)


def test_output_exit_code_and_atexit_handlers_survive_the_fast_exit(tmp_path):
    done = run("--help")
    assert done.returncode == 0 and "atexit ran" in done.stderr
    assert "usage: frame-infer" in done.stdout
    # a command that fails with --json: its one JSON object, whole, and its exit code
    done = run("report", str(tmp_path / "missing"), "--json")
    assert done.returncode == 2, done.stderr
    assert json.loads(done.stdout)["exit_code"] == 2
    assert "atexit ran" in done.stderr


def test_a_usage_error_still_exits_through_argparse():
    done = run("run", "--no-such-flag")
    assert done.returncode == 2 and "usage:" in done.stderr


def test_large_output_through_a_pipe_is_complete():
    """More than a pipe's buffer, written just before the exit, arrives whole."""
    script = SCRIPT.replace("from frame_infer.cli import entry",
                            "from frame_infer import cli\n"
                            "cli.main = lambda: (sys.stdout.write('x' * 200_000), 0)[1]\n"
                            "from frame_infer.cli import entry")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and len(done.stdout) == 200_000
