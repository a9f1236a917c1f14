"""A stand-in for MMS's Java frontend, for unit tests of ``serving.lifecycle``.

:func:`fake_java_home` makes a ``JAVA_HOME`` whose ``bin/java`` is a small Python
program: it reads the config ``LocalMMS`` writes (``-f``), binds both loopback ports,
prints MMS's start-up line and answers the management calls ``LocalMMS`` makes. A
registration starts one "worker" process (a sleeping child), as MMS does. Two hold
files make the moments of a test exact: while ``hold-start`` exists it does not say it
started; while ``hold-register`` exists a registration does not answer.
"""
from __future__ import annotations

import sys
from pathlib import Path

PROGRAM = '''\
import json, os, subprocess, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

args = sys.argv[1:]
lines = open(args[args.index("-f") + 1]).read().splitlines()
config = dict(line.split("=", 1) for line in lines if "=" in line)
holds = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
models, workers = {}, []


def held(name):
    while os.path.exists(os.path.join(holds, name)):
        time.sleep(0.02)


class Api(BaseHTTPRequestHandler):
    def answer(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        name = self.path.split("?")[0].rsplit("/", 1)[-1]
        if self.path.startswith("/models/"):
            return self.answer([{"modelName": name, "workers": models.get(name, [])}])
        self.answer({"models": [{"modelName": n} for n in models], "status": "Healthy"})

    def do_POST(self):
        query = dict(p.split("=", 1) for p in self.path.split("?", 1)[1].split("&"))
        workers.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"]))
        held("hold-register")
        models[query["model_name"]] = [{"id": "9000", "status": "READY"}]
        self.answer({"status": "registered"})

    def log_message(self, *args):
        pass


for key in ("inference_address", "management_address"):
    port = int(config[key].rsplit(":", 1)[1])
    server = ThreadingHTTPServer(("127.0.0.1", port), Api)
    Thread(target=server.serve_forever, daemon=True).start()
held("hold-start")
print("Model server started.", flush=True)
while True:
    time.sleep(1)
'''


def fake_java_home(folder: Path) -> Path:
    """A JAVA_HOME in ``folder`` whose ``bin/java`` is the stand-in; hold files go in
    ``folder`` (``folder / "hold-start"``, ``folder / "hold-register"``)."""
    java = folder / "jdk" / "bin" / "java"
    java.parent.mkdir(parents=True, exist_ok=True)
    java.write_text(f"#!{sys.executable}\n{PROGRAM}")
    java.chmod(0o755)
    return java.parent.parent
