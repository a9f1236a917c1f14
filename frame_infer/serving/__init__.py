"""Serving: run Multi Model Server with the ``.mar`` (locally, or in the SageMaker image).

``mms`` starts and stops the Java server by pid and registers models; ``container`` is
the SageMaker entrypoint (``/ping`` and ``/invocations`` on port 8080 in front of MMS).
Installed with the ``serving`` extra only; imports nothing from the client or deploy.
"""
