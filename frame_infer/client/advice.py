"""What to do about each error code a frame can end with (docs/API.md lists them all).

Printed by ``predict`` and ``run`` next to the count of frames with that code, so the
cause of a failed run is on the screen, not only in the output files.
"""
from __future__ import annotations

FIXES = {
    "request_failed": "the endpoint did not answer for these frames (it was down, refused "
                      "the whole request, or its answer left them out: the message says "
                      "which): fix that, then rerun the same command (it sends only these)",
    "model_not_found": "no such model at that URL: check the model name in --endpoint",
    "model_unavailable": "the model has no live worker (or its queue is full): check the "
                         "server, then rerun the same command",
    "internal_error": "the service failed: see the server's log, then rerun the same "
                      "command",
    "frame_too_large": "a frame does not fit in one request: use --model-input WxH (e.g. 64x64:L), "
                       "--by-reference, or a larger --max-payload if the server takes it",
    "frame_missing": "the manifest names a frame file that is not there: extract the "
                     "frames again (`frame-infer extract`, or `run --re-extract`); the "
                     "warning above names the manifest line",
    "request_too_large": "a frame is over the server's request limit: use --model-input WxH "
                         "or --by-reference",
    "bad_response": "the endpoint answered something that is not this service's JSON (or "
                    "a score that is not a number, such as NaN): check --endpoint points at "
                    "the model; a rerun sends these frames again",
    "invalid_image": "the frame file is not a readable image: re-extract the frames "
                     "(then rerun with --retry-errors)",
    "image_too_large": "the frame has more pixels than the model's max_image_pixels, or the "
                       "request more than its max_request_pixels: use --model-input WxH or "
                       "a smaller --frames-per-request",
    "s3_forbidden": "the service may not read that bucket: add it to allowed_s3_buckets in "
                    "the model config, or send bytes (drop --by-reference)",
    "s3_not_found": "the frame is not in S3 where the manifest says: upload the frames again",
    "s3_error": "the service could not read the frame from S3: check its credentials and "
                "the bucket, then rerun with --retry-errors",
    "invalid_instance": "a request entry was malformed: this is a client bug, please report "
                        "it",
    "unsupported_content_type": "the endpoint does not take this content type: check "
                                "--endpoint points at a frame-infer model",
    "too_many_images": "more frames per request than the model allows: lower --frames-per-request",
    "transform_failed": "the transform job failed for these frames' shard: read its log in "
                        "CloudWatch (/aws/sagemaker/TransformJobs), fix the cause, then rerun "
                        "the same command (a new job sends only these frames)",
}


def fix_for(code: str) -> str:
    """The advice for ``code``; a generic pointer to docs/API.md for others."""
    if code in FIXES:
        return FIXES[code]
    if code.startswith("http_5") or code.endswith("Exception"):
        return "the server failed these requests: see its log, then rerun the same command"
    return "see the message and docs/API.md"
