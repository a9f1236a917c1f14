"""LitServe peer: request batching and one inference worker per core.

Settings from LitServe's docs: "Batching" (lightning.ai/docs/litserve/features/batching:
``max_batch_size`` and ``batch_timeout`` on the LitAPI) and the LitServer reference
(lightning.ai/docs/litserve/api-reference/litserver: ``accelerator="cpu"``,
``workers_per_device``). Here: 2 workers on the CPU device (one per core, onnxruntime on
1 thread each), up to 4 requests (64 images, where onnxruntime's images/s levels off) per
batch, waiting at most 10 ms for a batch to fill (MMS's ``max_batch_delay`` in the
project's served rows).

    python -m benchmarks.peers.litserve_app --port P
"""
from __future__ import annotations

import argparse
import os

import litserve as ls
import numpy as np

from .core import Classifier

MAX_BATCH_REQUESTS, BATCH_TIMEOUT_S = 4, 0.01


class FrameAPI(ls.LitAPI):
    def setup(self, device):
        self.model = Classifier()

    def decode_request(self, request):
        # LitServe parses a multipart body itself (Starlette's form): one upload per part,
        # read here in the inference worker as its docs' file-upload examples do.
        return self.model.decode_parts([(name, upload.file.read())
                                        for name, upload in request.multi_items()])

    def batch(self, inputs):
        return inputs  # a list of (ids, pixels): merged in predict, one forward

    def predict(self, inputs):
        sizes = [len(ids) for ids, _ in inputs]
        probs = self.model.forward(np.concatenate([batch for _, batch in inputs]))
        out, start = [], 0
        for (ids, _), n in zip(inputs, sizes):
            out.append(self.model.answer(ids, probs[start:start + n]))
            start += n
        return out

    def unbatch(self, output):
        return output

    def encode_response(self, output):
        return output


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    api = FrameAPI(max_batch_size=MAX_BATCH_REQUESTS, batch_timeout=BATCH_TIMEOUT_S)
    server = ls.LitServer(api, accelerator="cpu", devices=1,
                          workers_per_device=args.workers, timeout=120)
    server.run(host="127.0.0.1", port=args.port, generate_client_file=False,
               log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
