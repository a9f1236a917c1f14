"""Ray Serve peer: ``@serve.batch`` over requests, one replica per core.

Settings from Ray Serve's docs: "Dynamic Request Batching"
(docs.ray.io/en/latest/serve/advanced-guides/dyn-req-batch.html: ``@serve.batch`` with
``max_batch_size`` and ``batch_wait_timeout_s``, on an ``async`` method taking a list) and
the deployment options of "Configure Ray Serve deployments" (``num_replicas``,
``ray_actor_options={"num_cpus": ...}``). Here: 2 replicas of 1 CPU each (onnxruntime on 1
thread), up to 4 requests (64 images) per batch, 10 ms wait, as the other batching peers.

Ray runs as a local head started here with every port it opens named in 20000-32000
(``ray start --head --block``, a child of this process, in its process group), no
dashboard and no usage statistics; Serve's HTTP proxy listens on 127.0.0.1:PORT.

    python -m benchmarks.peers.ray_app --port P --ports-from Q --temp-dir D
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

MAX_BATCH_REQUESTS, BATCH_WAIT_S = 4, 0.01


def build_app(replicas: int):
    import numpy as np
    from ray import serve
    from starlette.requests import Request
    from starlette.responses import Response

    from .core import Classifier, answer_json

    @serve.deployment(num_replicas=replicas, ray_actor_options={"num_cpus": 1},
                      max_ongoing_requests=16)
    class Frames:
        def __init__(self):
            self.model = Classifier()

        @serve.batch(max_batch_size=MAX_BATCH_REQUESTS, batch_wait_timeout_s=BATCH_WAIT_S)
        async def classify(self, decoded: list) -> list:
            probs = self.model.forward(np.concatenate([batch for _, batch in decoded]))
            out, start = [], 0
            for ids, batch in decoded:
                out.append(self.model.answer(ids, probs[start:start + len(batch)]))
                start += len(batch)
            return out

        async def __call__(self, request: Request) -> Response:
            if request.method == "GET":
                return Response(b"{}", media_type="application/json")
            decoded = self.model.decode(await request.body(), request.headers.get("content-type"))
            return Response(answer_json(await self.classify(decoded)),
                            media_type="application/json")

    return Frames.bind()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ports-from", type=int, required=True,
                        help="first of 40 free loopback ports for Ray's own servers")
    parser.add_argument("--temp-dir", type=Path, required=True)
    parser.add_argument("--replicas", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    p = args.ports_from
    ray = Path(sys.executable).with_name("ray")
    head = subprocess.Popen([
        str(ray), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
        f"--port={p}", f"--node-manager-port={p + 1}", f"--object-manager-port={p + 2}",
        f"--ray-client-server-port={p + 3}", f"--dashboard-agent-listen-port={p + 4}",
        f"--dashboard-agent-grpc-port={p + 5}", f"--metrics-export-port={p + 6}",
        f"--runtime-env-agent-port={p + 7}", f"--dashboard-port={p + 8}",
        f"--min-worker-port={p + 10}", f"--max-worker-port={p + 39}",
        "--include-dashboard=false", "--disable-usage-stats",
        f"--num-cpus={args.replicas}", f"--temp-dir={args.temp_dir}"])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        import ray as ray_api
        from ray import serve

        for _ in range(120):  # the head takes some seconds to answer
            try:
                ray_api.init(address=f"127.0.0.1:{p}", logging_level="WARNING")
                break
            except Exception:  # noqa: BLE001 - not up yet
                if head.poll() is not None:
                    raise
                time.sleep(0.5)
        serve.start(http_options={"host": "127.0.0.1", "port": args.port})
        serve.run(build_app(args.replicas), route_prefix="/")
        while head.poll() is None:
            time.sleep(1)
    finally:
        head.terminate()
        try:
            head.wait(20)
        except subprocess.TimeoutExpired:
            head.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
