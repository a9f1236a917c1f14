"""Serving: run Multi Model Server with the ``.mar`` (locally, or in the SageMaker image).

``lifecycle.ServedModel`` is the one way to run MMS (ports and archive checked, Java
started by pid, models registered and READY, signals, metrics thread, stop and clean-up);
``mms`` holds its steps (settings, config, Java command, registration, stop by pid).
``front`` is the HTTP front clients reach, before an MMS on internal loopback ports, in
``frame-infer serve`` and the SageMaker container alike (``/predictions/NAME``,
``/invocations``, ``/ping``; bodies bounded, framing checked, errors in the contract's
shape, MMS restarted when the model stops answering); ``container`` is the SageMaker
entrypoint. Installed with the
``serving`` extra; imports nothing from the client or deploy.
"""
