"""A stand-in server for the harness's own tests, not a peer: the standard library's
threading HTTP server in front of :class:`~benchmarks.peers.core.Classifier`, which can
be told to drop one image's answer and alter another's, so a test can prove that the load
generator and the answer check flag both. ``GET /health`` answers 200 once the model is
loaded; ``POST /predict`` takes the benchmark's multipart bodies.

    python -m benchmarks.peers.standin --port P [--drop ID] [--alter ID]
"""
from __future__ import annotations

import argparse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .core import Classifier, answer_json


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--drop", default="", help="leave this image id out of its answer")
    parser.add_argument("--alter", default="", help="shift this image id's probabilities")
    args = parser.parse_args(argv)
    model = Classifier()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the load generator expects

        def log_message(self, *args):  # quiet: the test reads answers, not logs
            pass

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            self._send(200 if self.path == "/health" else 404, b"{}")

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            answer = model.handle(body, self.headers.get("Content-Type"))
            kept = []
            for entry in answer["predictions"]:
                if entry["id"] == args.drop:
                    continue
                if entry["id"] == args.alter:
                    first = next(iter(entry["probabilities"]))
                    entry["probabilities"][first] += 0.01
                kept.append(entry)
            self._send(200, answer_json({"predictions": kept}))

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
