"""A loopback stand-in of SageMaker's runtime API in front of the real MMS."""
from __future__ import annotations

import urllib.error
import urllib.request

from .loopback import JsonHandler, StandIn


class SageMakerProxy(StandIn):
    """Stands in for SageMaker's runtime API, the one part that cannot run here.

    ``POST /endpoints/{name}/invocations`` goes to the real MMS ``/invocations``; a
    non-200 container answer comes back as AWS does: 424 ``ModelError`` carrying the
    original status and body. That mapping (plus optional injected throttling) is all
    it does differently from AWS; signing, content types and retries are boto3's own.
    """

    def __init__(self, mms_url: str, model_name: str, throttle_first: int = 0):
        self.calls, self.signed = 0, 0
        self._throttle = throttle_first
        proxy = self

        class Handler(JsonHandler):
            def do_POST(self):
                proxy.calls += 1
                if self.headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256"):
                    proxy.signed += 1
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if proxy._throttle > 0:
                    proxy._throttle -= 1
                    return self.send_json(
                        400, {"__type": "ThrottlingException", "message": "Rate exceeded"},
                        {"x-amzn-ErrorType": "ThrottlingException"})
                request = urllib.request.Request(
                    f"{mms_url}/invocations?model_name={model_name}", data=body,
                    headers={"Content-Type": self.headers["Content-Type"]}, method="POST")
                try:
                    with urllib.request.urlopen(request, timeout=60) as resp:
                        return self.send_json(
                            200, resp.read(), {"x-Amzn-Invoked-Production-Variant": "AllTraffic"})
                except urllib.error.HTTPError as exc:
                    original = exc.read().decode("utf-8", "replace")
                    return self.send_json(424, {
                        "ErrorCode": "CLIENT_ERROR_FROM_MODEL", "OriginalStatusCode": exc.code,
                        "OriginalMessage": original,
                        "Message": f"Received client error ({exc.code}) from primary"},
                        {"x-amzn-ErrorType": "ModelError"})

        self.serve(Handler)
