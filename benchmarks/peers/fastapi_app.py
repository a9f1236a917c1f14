"""The plain peer: FastAPI on uvicorn, one request per forward, no batching.

Configured as FastAPI's "Server Workers - Uvicorn with Workers" page says
(fastapi.tiangolo.com/deployment/server-workers): ``uvicorn ... --workers N`` with one
worker process per core, here 2, each running onnxruntime on cores / workers threads.
The endpoint reads the body asynchronously and runs the blocking decode and forward in a
worker thread (``anyio.to_thread``), as FastAPI's "Concurrency and async / await" page
advises for blocking work.

    uvicorn benchmarks.peers.fastapi_app:app --workers 2 --host 127.0.0.1 --port P
"""
from __future__ import annotations

from fastapi import FastAPI, Request, Response

from .core import Classifier, answer_json

app = FastAPI()
_model: Classifier | None = None


def model() -> Classifier:
    global _model
    if _model is None:
        _model = Classifier()
    return _model


@app.on_event("startup")
def load() -> None:
    model()


@app.get("/health")
def health() -> dict:
    return {"ok": True}


@app.post("/predict")
async def predict(request: Request) -> Response:
    import anyio

    body = await request.body()
    answer = await anyio.to_thread.run_sync(model().handle, body,
                                            request.headers.get("content-type"))
    return Response(answer_json(answer), media_type="application/json")
