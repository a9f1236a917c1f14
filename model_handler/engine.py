"""Inference engines: the ONNX model loaded and bound ONCE, then run on batches.

``MXNetEngine`` imports the ONNX graph into MXNet and binds one executor per batch
bucket (1, 2, 4, ... up to the maximum batch), all sharing the parameters and the
largest executor's memory. A batch is split into chunks that fit the buckets, every
chunk is queued on MXNet's asynchronous engine and the results are read back with a
single synchronisation at the end.

``OnnxRuntimeEngine`` runs the same file with onnxruntime (the reference engine).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np
import onnx

from .graph_opt import optimize as optimize_graph

logger = logging.getLogger(__name__)


class EngineError(RuntimeError):
    """The model cannot be loaded or run; the message names the file and the fix."""


class Engine(Protocol):
    name: str
    context_name: str

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """Run ``batch`` (N, C, H, W) float32 and return the raw outputs as (N, classes)."""


def bucket_sizes(max_batch: int) -> tuple[int, ...]:
    """Powers of two below ``max_batch``, and ``max_batch`` itself."""
    sizes, size = [], 1
    while size < max_batch:
        sizes.append(size)
        size *= 2
    sizes.append(max_batch)
    return tuple(sizes)


@dataclass(frozen=True)
class Chunk:
    start: int
    count: int
    bucket: int


def plan_chunks(total: int, buckets: Sequence[int], max_waste: float = 0.25) -> list[Chunk]:
    """Split ``total`` images into chunks, each run on one bucket executor.

    Full chunks of the largest bucket first; the remainder is padded up to the next
    bucket when that wastes at most ``max_waste`` of it, else split further.
    """
    chunks, start, remaining = [], 0, total
    largest = buckets[-1]
    while remaining > 0:
        if remaining >= largest:
            bucket = count = largest
        else:
            above = min(b for b in buckets if b >= remaining)
            if (above - remaining) / above <= max_waste:
                bucket, count = above, remaining
            else:
                bucket = count = max(b for b in buckets if b <= remaining)
        chunks.append(Chunk(start, count, bucket))
        start += count
        remaining -= count
    return chunks


def load_onnx(path: str) -> onnx.ModelProto:
    try:
        return onnx.load(path)
    except Exception as exc:  # onnx raises DecodeError, OSError, ValueError, ...
        raise EngineError(f"cannot read ONNX model {path}: {exc}; check that the file is a "
                          "complete .onnx model (re-download or re-export it)") from exc


def add_initializers_to_inputs(model: onnx.ModelProto) -> int:
    """Declare every initializer as a graph input, as MXNet's ONNX importer requires.

    Modern ONNX files (IR >= 4) leave initializers out of ``graph.input``; MXNet's
    importer then fails with ``KeyError`` on the first weight. Returns how many
    inputs were added.
    """
    declared = {i.name for i in model.graph.input}
    added = 0
    for tensor in model.graph.initializer:
        if tensor.name not in declared:
            model.graph.input.append(onnx.helper.make_tensor_value_info(
                tensor.name, tensor.data_type, list(tensor.dims)))
            added += 1
    return added


def _opset(model: onnx.ModelProto) -> int:
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=7)


def import_into_mxnet(path: str):
    """Import an ONNX file into an MXNet symbol and parameters (repairing modern files)."""
    from mxnet.contrib.onnx.onnx2mx.import_onnx import GraphProto

    model = load_onnx(path)
    added = add_initializers_to_inputs(model)
    if added:
        logger.info("declared %d initializers as graph inputs for MXNet's importer", added)
    try:
        return GraphProto().from_onnx(model.graph, _opset(model))
    except (KeyError, NotImplementedError, AttributeError, ValueError, TypeError) as exc:
        raise EngineError(f"MXNet cannot import {path} ({type(exc).__name__}: {exc}); the "
                          "model uses an operator or opset MXNet 1.9 does not support: set "
                          "engine to 'onnxruntime' in the model config") from exc


def resolve_mxnet_context(requested: str, gpu_id: int | None):
    """Pick the MXNet context: ``auto`` = EIA when this build has it, else MMS's GPU, else CPU."""
    import mxnet as mx

    requested = (requested or "auto").lower()
    if requested == "auto":
        if hasattr(mx, "eia"):
            return mx.eia(), "Elastic Inference build of MXNet"
        if gpu_id is not None and mx.context.num_gpus() > 0:
            return mx.gpu(int(gpu_id)), f"MMS assigned GPU {gpu_id}"
        return mx.cpu(), "no Elastic Inference and no GPU assigned"
    if requested == "cpu":
        return mx.cpu(), "configured"
    if requested == "eia":
        if not hasattr(mx, "eia"):
            raise EngineError("context 'eia' was requested but this MXNet build has no "
                              "mx.eia() (only AWS's Elastic Inference build has it); use "
                              "context 'auto', 'cpu' or 'gpu'")
        return mx.eia(), "configured"
    if requested.startswith("gpu"):
        index = int(requested.partition(":")[2] or (gpu_id or 0))
        if mx.context.num_gpus() <= index:
            raise EngineError(f"context {requested!r} was requested but MXNet sees "
                              f"{mx.context.num_gpus()} GPUs; use context 'auto' or 'cpu'")
        return mx.gpu(index), "configured"
    raise EngineError(f"unknown context {requested!r}; use auto, cpu, gpu, gpu:N or eia")


class MXNetEngine:
    """The ONNX model in MXNet, one executor per bucket size, bound once."""

    name = "mxnet"

    def __init__(self, model_path: str, input_name: str, input_shape: tuple[int, int, int],
                 max_batch: int, context: str = "auto", gpu_id: int | None = None):
        import mxnet as mx

        self._mx = mx
        self.ctx, reason = resolve_mxnet_context(context, gpu_id)
        self.context_name = str(self.ctx)
        logger.info("MXNet context %s (%s)", self.ctx, reason)
        sym, arg_params, aux_params = import_into_mxnet(model_path)
        sym = optimize_graph(sym, arg_params)
        if input_name not in sym.list_arguments():
            raise EngineError(f"input {input_name!r} is not an input of {model_path} "
                              f"(inputs: {[a for a in sym.list_arguments() if a not in arg_params]});"
                              " fix input_name in the model config")
        self.input_name = input_name
        self.input_shape = tuple(input_shape)
        self.buckets = bucket_sizes(max_batch)
        args = {k: v.as_in_context(self.ctx) for k, v in arg_params.items()}
        aux = {k: v.as_in_context(self.ctx) for k, v in aux_params.items()}
        args[input_name] = mx.nd.zeros((max_batch, *self.input_shape), ctx=self.ctx)
        largest = sym.bind(self.ctx, args=args, aux_states=aux, grad_req="null")
        # Smaller buckets share the parameters and the largest executor's memory.
        self._executors = {max_batch: largest}
        for size in self.buckets[:-1]:
            self._executors[size] = largest.reshape(**{input_name: (size, *self.input_shape)})

    def forward(self, batch: np.ndarray, chunk_size: int | None = None) -> np.ndarray:
        """Queue every chunk on MXNet's engine, then read all outputs with one sync.

        ``chunk_size`` (a bucket size) forces chunks of that size, e.g. 1 to run one image
        per forward (the benchmark's "one image at a time, one sync at the end").
        """
        nd = self._mx.nd
        outputs = []
        if chunk_size is not None and chunk_size not in self._executors:
            raise ValueError(f"chunk_size {chunk_size} is not a bucket size {self.buckets}")
        plan = (plan_chunks(len(batch), self.buckets) if chunk_size is None else
                [Chunk(s, min(chunk_size, len(batch) - s), chunk_size)
                 for s in range(0, len(batch), chunk_size)])
        for chunk in plan:
            executor = self._executors[chunk.bucket]
            # A fresh NDArray, then an engine-side copy: no wait on the previous forward.
            src = nd.array(batch[chunk.start:chunk.start + chunk.count], ctx=self.ctx,
                           dtype=np.float32)
            src.copyto(executor.arg_dict[self.input_name][:chunk.count])
            executor.forward(is_train=False)
            out = executor.outputs[0][:chunk.count]
            outputs.append(out.reshape((chunk.count, -1)).copy())
        if not outputs:
            return np.zeros((0, 0), dtype=np.float32)
        joined = outputs[0] if len(outputs) == 1 else nd.concat(*outputs, dim=0)
        return joined.asnumpy()  # the one synchronisation point


class OnnxRuntimeEngine:
    """The same ONNX file on onnxruntime's CPU provider."""

    name = "onnxruntime"

    def __init__(self, model_path: str, input_name: str, max_batch: int,
                 threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self._session = ort.InferenceSession(model_path, options,
                                                 providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise EngineError(f"onnxruntime cannot load {model_path}: {exc}") from exc
        self.context_name = "cpu(0)"
        self.input_name = input_name
        batch_dim = self._session.get_inputs()[0].shape[0]
        # A file with a fixed batch dimension (the zoo's FER+ has 1) runs in chunks of it.
        self.max_batch = batch_dim if isinstance(batch_dim, int) and batch_dim > 0 else max_batch

    def forward(self, batch: np.ndarray) -> np.ndarray:
        results = []
        for start in range(0, len(batch), self.max_batch):
            chunk = np.ascontiguousarray(batch[start:start + self.max_batch], dtype=np.float32)
            out = self._session.run(None, {self.input_name: chunk})[0]
            results.append(out.reshape(len(chunk), -1))
        return np.concatenate(results) if results else np.zeros((0, 0), dtype=np.float32)
