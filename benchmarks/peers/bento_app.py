"""BentoML peer: a front service that decodes, and a model service with adaptive batching.

Settings from BentoML's docs: "Adaptive batching"
(docs.bentoml.com/en/latest/guides/adaptive-batching.html: ``@bentoml.api(batchable=True,
max_batch_size=..., max_latency_ms=...)``, batches formed in the service that runs the
model when another service calls it, the page's two-service layout), "Workers"
(docs.bentoml.com/en/latest/guides/workers.html: ``workers="cpu_count"`` for CPU-bound
work) and "ASGI integration" (``@bentoml.asgi_app``, which lets the front take the
benchmark's multipart bodies as they are). Here: the model service has one worker per
core (onnxruntime on 1 thread each) and batches up to 64 images (4 requests of 16) along
axis 0, within BentoML's default latency budget; the front has one worker.

    bentoml serve benchmarks.peers.bento_app:Front --host 127.0.0.1 --port P
"""
from __future__ import annotations

import bentoml
import numpy as np
from fastapi import FastAPI, Request, Response

from .core import Classifier, answer_json

MAX_BATCH_IMAGES = 64
front_app = FastAPI()


@bentoml.service(workers="cpu_count")
class Model:
    def __init__(self):
        self.model = Classifier()

    @bentoml.api(batchable=True, batch_dim=0, max_batch_size=MAX_BATCH_IMAGES)
    def classify(self, pixels: np.ndarray) -> np.ndarray:
        return self.model.forward(pixels)


@bentoml.service(workers=1)
@bentoml.asgi_app(front_app, path="/v1")
class Front:
    model = bentoml.depends(Model)

    def __init__(self):
        self.decoder = Classifier(threads=1)  # decoding only: its engine stays idle

    @bentoml.api
    def health(self) -> dict:
        return {"ok": True}

    @front_app.post("/predict")
    async def predict(self, request: Request) -> Response:
        import anyio

        body = await request.body()
        ids, batch = await anyio.to_thread.run_sync(
            self.decoder.decode, body, request.headers.get("content-type"))
        probs = await self.model.to_async.classify(batch)
        return Response(answer_json(self.decoder.answer(ids, np.asarray(probs))),
                        media_type="application/json")
