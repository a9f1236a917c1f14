"""Serving: run Multi Model Server with the ``.mar`` (locally, or in the SageMaker image).

``mms`` starts and stops the Java server by pid and registers models; ``container`` is
the SageMaker entrypoint's lifecycle and ``front`` its HTTP front (``/ping`` and
``/invocations`` on port 8080, in front of MMS on loopback). Installed with the
``serving`` extra; imports nothing from the client or deploy.
"""
