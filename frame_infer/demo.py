"""The main job on built-in defaults: model -> .mar -> local MMS -> one multi-image request.

Without ``--model`` it builds the FER+-architecture test model (deterministic random
weights: the labels it prints are not real emotions). With ``--model
path/to/emotion-ferplus-8.onnx`` (see ``frame-infer fetch-ferplus``) it serves the
real one.
"""
from __future__ import annotations

import argparse
import io
import json
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np
from PIL import Image

from . import modelgen, packager
from .server import free_port, serve_model


def synthetic_frames(count: int, size: tuple[int, int] = (640, 480)) -> list[bytes]:
    """JPEG frames of a bright blob moving over a gradient: real decode work, varied input."""
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for i in range(count):
        cx, cy = width * (0.2 + 0.6 * i / max(1, count - 1)), height / 2
        blob = 200 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (height / 6) ** 2))
        gray = np.clip(40 + 0.15 * xx + blob, 0, 255)
        rgb = np.stack([gray, gray * 0.9, gray * 0.8], axis=-1).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, "JPEG", quality=90)
        frames.append(buf.getvalue())
    return frames


def multipart_body(parts: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body with one image per uniquely named part."""
    boundary = uuid.uuid4().hex
    chunks = []
    for name, data in parts:
        chunks.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; "
                      f"filename=\"{name}.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n".encode())
        chunks.append(data)
        chunks.append(b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def post(url: str, body: bytes, content_type: str, timeout: float = 120) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, help="ONNX model (default: build the test model)")
    parser.add_argument("--work-dir", type=Path, default=Path("build/demo"))
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--name", default="ferplus")


def run(args: argparse.Namespace) -> int:
    work = args.work_dir
    model = args.model
    if model is None:
        model = work / "ferplus-test.onnx"
        if not model.exists():
            modelgen.write_test_model("ferplus", model)
            print(f"built the FER+-architecture test model (random weights): {model}")
    archive = packager.build_archive(model, args.name, work / "model-store")
    print(f"packaged {archive}")
    started = time.monotonic()
    server = serve_model(work / "model-store", archive.name, args.name, free_port(),
                         free_port(), batch_size=4, max_batch_delay_ms=20, workers=1)
    try:
        print(f"MMS ready in {time.monotonic() - started:.1f}s at {server.inference_url}")
        frames = synthetic_frames(args.frames)
        parts = [(f"frame_{i:06d}", data) for i, data in enumerate(frames)]
        parts.insert(len(parts) // 2, ("frame_corrupt", b"this is not an image"))
        body, content_type = multipart_body(parts)
        sent = time.monotonic()
        status, answer = post(f"{server.inference_url}/predictions/{args.name}", body,
                              content_type)
        elapsed = time.monotonic() - sent
    finally:
        server.stop()
        print("MMS stopped")
    print(f"\nHTTP {status}: {len(parts)} images in one request, answered in {elapsed:.2f}s "
          f"by {answer.get('model')}")
    print(f"{'id':<16} {'label':<10} {'score':>6}")
    for entry in answer.get("predictions", []):
        if "error" in entry:
            print(f"{entry['id']:<16} ERROR {entry['error']['code']}: "
                  f"{entry['error']['message']}")
        else:
            print(f"{entry['id']:<16} {entry['label']:<10} {entry['score']:6.3f}")
    return 0 if status == 200 else 1
