"""Serving: run Multi Model Server with the ``.mar`` (locally, or in the SageMaker image).

``lifecycle.ServedModel`` is the one way to run MMS (ports and archive checked, Java
started by pid, models registered and READY, signals, metrics thread, stop and clean-up);
``mms`` holds its steps (settings, config, Java command, registration, stop by pid).
``container`` is the SageMaker entrypoint and ``front`` its HTTP front (``/ping`` and
``/invocations`` on port 8080, in front of MMS on loopback). Installed with the
``serving`` extra; imports nothing from the client or deploy.
"""
