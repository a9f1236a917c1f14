"""The EMF record's structure and the reading of MMS's console lines into metrics.

The MMS lines below are copied from a real MMS 1.1.11 console log (the integration tests
in tests/integration/test_metrics.py run the real thing end to end).
"""
from __future__ import annotations

import io
import json
import re
import threading
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from frame_infer.serving.metrics import MMSLogReader, ServingMetrics, batch_record, follow
from model_handler import emf

PREFIX = (b"2026-11-26T08:33:13,714 [INFO ] W-rgb-1-stdout "
          b"com.amazonaws.ml.mms.wlm.WorkerLifeCycle - ")
RESTART = (b"2026-11-26T08:33:07,671 [INFO ] W-9000-rgb com.amazonaws.ml.mms.wlm.WorkerThread"
           b" - Retry worker: 9000-b63e8224 in 1 seconds.\n")
ACCESS = (b'2026-11-26T08:33:13,716 [INFO ] W-9000-rgb ACCESS_LOG - /127.0.0.1:60620 "POST '
          b'/predictions/rgb HTTP/1.1" %d %d\n')
OTHER_ACCESS = (b'2026-11-26T08:33:13,646 [INFO ] epollEventLoopGroup-3-2 ACCESS_LOG - '
                b'/127.0.0.1:38928 "GET /models/rgb HTTP/1.1" 200 0\n')


def samples(metrics: ServingMetrics) -> dict:
    text = metrics.exposition().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def record(**overrides) -> dict:
    args = dict(endpoint="ep", statuses=[200, 200, 400], request_images=[3, 1, 0],
                error_codes=["invalid_image", "s3_error", "invalid_image"], inference_ms=12.5,
                timestamp_ms=1_700_000_000_000)
    return emf.batch_record(**{**args, **overrides})


def test_batch_record_follows_the_emf_contract():
    doc = json.loads(json.dumps(record()))
    assert doc["_aws"] == {"Timestamp": 1_700_000_000_000, "CloudWatchMetrics": [{
        "Namespace": "FrameInfer", "Dimensions": [["EndpointName"]],
        "Metrics": [{"Name": "Images", "Unit": "Count"}, {"Name": "ImageErrors", "Unit": "Count"},
                    {"Name": "Requests", "Unit": "Count"},
                    {"Name": "InferenceLatency", "Unit": "Milliseconds"}]}]}
    # Every dimension and metric the directive names is a member of the root (EMF rule).
    assert (doc["EndpointName"], doc["Images"], doc["ImageErrors"], doc["Requests"],
            doc["InferenceLatency"]) == ("ep", 4, 3, 3, 12.5)
    assert doc["ImageErrorCodes"] == {"invalid_image": 2, "s3_error": 1}
    assert doc["RequestStatuses"] == {"200": 2, "400": 1}


def test_endpoint_name_comes_from_the_environment():
    assert emf.endpoint_name({}) == "local"
    assert emf.endpoint_name({"FRAME_INFER_ENDPOINT_NAME": " "}) == "local"
    assert emf.endpoint_name({"FRAME_INFER_ENDPOINT_NAME": "prod-1"}) == "prod-1"


def test_emit_writes_one_flushed_json_line():
    out = io.StringIO()
    emf.emit(record(), out)
    assert out.getvalue().count("\n") == 1 and json.loads(out.getvalue()) == record()


def test_reader_strips_mms_prefix_and_counts_the_batch():
    metrics = ServingMetrics()
    line = json.dumps(record()).encode()
    assert MMSLogReader(metrics).line(PREFIX + line + b"\n") == line + b"\n"
    got = samples(metrics)
    assert got[("frame_infer_request_images_count", ())] == 3
    assert got[("frame_infer_request_images_sum", ())] == 4
    assert got[("frame_infer_image_errors_total", (("code", "invalid_image"),))] == 2
    assert got[("frame_infer_batch_images_sum", ())] == 4
    assert got[("frame_infer_inference_seconds_sum", ())] == 0.0125


def test_reader_passes_other_lines_and_counts_restarts_and_access_only_when_asked():
    quiet, counting = ServingMetrics(), ServingMetrics()
    lines = [RESTART, ACCESS % (200, 40), ACCESS % (503, 2), OTHER_ACCESS,
             PREFIX + b'{"not": "emf"}\n', b"\tat java.lang.Thread.run(Thread.java:840)\n"]
    for metrics, count in ((quiet, False), (counting, True)):
        reader = MMSLogReader(metrics, count_access=count)
        assert [reader.line(line) for line in lines] == lines
    assert samples(quiet)[("frame_infer_worker_restarts_total", ())] == 1
    assert ("frame_infer_requests_total", (("status", "200"),)) not in samples(quiet)
    got = samples(counting)
    assert got[("frame_infer_requests_total", (("status", "200"),))] == 1
    assert got[("frame_infer_requests_total", (("status", "503"),))] == 1
    assert got[("frame_infer_request_seconds_sum", ())] == 0.042
    assert got[("frame_infer_batch_images_count", ())] == 0


def test_batch_record_refuses_other_json():
    assert batch_record(b'{"_aws": {"CloudWatchMetrics": [{"Namespace": "Other"}]}}') is None
    assert batch_record(b"{broken") is None and batch_record(b"plain text") is None


def test_follow_waits_for_whole_lines(tmp_path):
    """Java may be mid-line when the file is read: half a record is not parsed as junk."""
    log, out = tmp_path / "mms.stdout.log", io.BytesIO()
    line = PREFIX + json.dumps(record()).encode() + b"\n"
    log.write_bytes(RESTART + line[:50])
    metrics, stop = ServingMetrics(), threading.Event()
    thread = threading.Thread(target=follow, args=(log, MMSLogReader(metrics), stop, out))
    thread.start()
    try:
        with open(log, "ab") as sink:
            stop.wait(0.5)
            sink.write(line[50:])
        for _ in range(50):
            if samples(metrics).get(("frame_infer_batch_images_count", ())):
                break
            stop.wait(0.1)
    finally:
        stop.set()
        thread.join(5)
    assert out.getvalue() == RESTART + json.dumps(record()).encode() + b"\n"
    assert samples(metrics)[("frame_infer_batch_images_count", ())] == 1


def test_api_md_example_has_the_records_shape():
    """docs/API.md's EMF example is what the handler prints (same members, same directive)."""
    api = (Path(__file__).resolve().parents[2] / "docs" / "API.md").read_text()
    (block,) = re.findall(r"```json\n(.*?)```", api.split("## Metrics", 1)[1], re.S)
    example, real = json.loads(block), record()
    assert sorted(example) == sorted(real)
    assert example["_aws"]["CloudWatchMetrics"] == real["_aws"]["CloudWatchMetrics"]
    assert example["Images"] == sum(example["RequestImages"])
    assert example["ImageErrors"] == sum(example["ImageErrorCodes"].values())
