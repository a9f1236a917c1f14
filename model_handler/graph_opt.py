"""Rewrites of the MXNet graph that MXNet's ONNX importer produces, for speed.

The importer writes ``Relu`` as the bare ``relu`` op, which MKL-DNN neither runs nor fuses
(``Activation(act_type="relu")`` it does, as a post-op of the convolution). It
translates every ``MaxPool`` into ``Pad`` (even with zero padding) +
``Pooling``, and every ``Gemm`` into ``Flatten`` + ``linalg_gemm2`` + ``_mul_scalar`` +
``broadcast_add``. The zero ``Pad`` is a no-op that still breaks MKL-DNN's blocked
layout (two reorders per pooling), and the Gemm chain misses MKL-DNN's fused inner
product. A ``MaxPool`` with real padding becomes an edge-mode ``Pad`` + ``Pooling`` of
plain NCHW data, which MXNet pools outside MKL-DNN: on fer's model (four of them, pads
at the end only, as Keras' "same" pooling writes them) 80 % of a forward went to
pooling. Where the padding can be said in ``Pooling``'s own terms, it is (see
:func:`_max_pooling_of_edge_pad`). All are rewritten to what the ONNX graph meant;
results are unchanged (the equivalence tests compare against onnxruntime).
"""
from __future__ import annotations

import ast
import json


def _attr(node: dict, key: str, default=None):
    return (node.get("attrs") or {}).get(key, default)


def _is_zero_pad(node: dict) -> bool:
    if node["op"] != "Pad":
        return False
    widths = ast.literal_eval(_attr(node, "pad_width", "()"))
    return all(w == 0 for w in widths)


def optimize(sym, arg_params: dict):
    """Return an equivalent symbol without zero Pads and with Gemm as FullyConnected."""
    import mxnet as mx

    graph = json.loads(sym.tojson())
    nodes = graph["nodes"]
    alias: dict[int, list] = {}  # node index -> the input entry that replaces it

    def entry(e: list) -> list:
        while e[0] in alias:
            e = alias[e[0]]
        return e

    for i, node in enumerate(nodes):
        node["inputs"] = [entry(e) for e in node["inputs"]]
        if _is_zero_pad(node):
            alias[i] = node["inputs"][0]
        elif node["op"] == "Flatten" and nodes[node["inputs"][0][0]]["op"] in (
                "Flatten", "FullyConnected"):
            alias[i] = node["inputs"][0]  # already 2-D
        elif node["op"] == "relu":
            # The same function as Activation(relu), which MKL-DNN implements and fuses
            # into the convolution before it; the bare `relu` op runs outside MKL-DNN, in
            # plain NCHW, costing two layout reorders per convolution.
            node["op"], node["attrs"] = "Activation", {"act_type": "relu"}
        elif node["op"] == "Pooling":
            _max_pooling_of_edge_pad(nodes, node)
        elif node["op"] == "broadcast_add":
            fused = _gemm_as_fully_connected(nodes, node, arg_params)
            if fused is not None:
                nodes[i] = fused
    graph["heads"] = [entry(e) for e in graph["heads"]]
    graph.pop("node_row_ptr", None)
    return mx.sym.load_json(json.dumps(graph))


def _gemm_as_fully_connected(nodes: list, add: dict, arg_params: dict) -> dict | None:
    """broadcast_add(linalg_gemm2(X, W, transpose_b=1, alpha=1), _mul_scalar(b, 1))."""
    if len(add["inputs"]) != 2:
        return None
    gemm, scaled = (nodes[e[0]] for e in add["inputs"])
    if (gemm["op"] != "_linalg_gemm2" or scaled["op"] != "_mul_scalar"
            or float(_attr(scaled, "scalar", 0)) != 1.0
            or float(_attr(gemm, "alpha", 1)) != 1.0
            or _attr(gemm, "transpose_a", "0") not in ("0", "False")
            or _attr(gemm, "transpose_b", "0") not in ("1", "True")):
        return None
    data, weight = gemm["inputs"]
    bias = scaled["inputs"][0]
    weight_node, bias_node = nodes[weight[0]], nodes[bias[0]]
    if (weight_node["op"] != "null" or bias_node["op"] != "null"
            or weight_node["name"] not in arg_params or bias_node["name"] not in arg_params):
        return None
    num_hidden = arg_params[weight_node["name"]].shape[0]
    if arg_params[bias_node["name"]].shape != (num_hidden,):
        return None
    return {"op": "FullyConnected", "name": add["name"],
            "attrs": {"num_hidden": str(num_hidden), "no_bias": "False", "flatten": "True"},
            "inputs": [data, weight, bias]}


def _max_pooling_of_edge_pad(nodes: list, pool: dict) -> None:
    """Max ``Pooling`` (valid) of an edge ``Pad``: the pad folded into the pooling.

    Max over edge-replicated values is max over the window's real values (each window
    holds a real value when the kernel is larger than the pad), which is what
    ``Pooling`` computes over its own padding. Its padding is the same at both ends:
    begin == end pads are ``pad`` with the valid convention, and end == begin +
    stride - 1 is ``pad`` with the full convention, whose output size
    ``ceil((H + 2 * begin - k) / s) + 1`` is then ``floor((H + begin + end - k) / s) +
    1``, the padded valid one's, for every H. Anything else is left as it is."""
    source = nodes[pool["inputs"][0][0]]
    if (_attr(pool, "pool_type") != "max" or source["op"] != "Pad"
            or _attr(source, "mode") != "edge"
            or _attr(pool, "global_pool", "False") not in ("False", "0")
            or _attr(pool, "pooling_convention", "valid") != "valid"
            or any(ast.literal_eval(_attr(pool, "pad", "()")))):
        return
    widths = ast.literal_eval(_attr(source, "pad_width", "()"))
    kernel = ast.literal_eval(_attr(pool, "kernel", "()"))
    stride = ast.literal_eval(_attr(pool, "stride", "()")) or (1,) * len(kernel)
    begins, ends = widths[4::2], widths[5::2]
    if any(widths[:4]) or not len(kernel) == len(stride) == len(begins) == len(ends):
        return
    if any(k <= max(b, e) for k, b, e in zip(kernel, begins, ends)):
        return
    if all(e == b for b, e in zip(begins, ends)):
        convention = "valid"
    elif all(e == b + s - 1 for b, e, s in zip(begins, ends, stride)):
        convention = "full"
    else:
        return
    pool["attrs"] = {**pool["attrs"], "pad": str(tuple(begins)),
                     "pooling_convention": convention}
    pool["inputs"] = [source["inputs"][0], *pool["inputs"][1:]]
