"""The client: video -> frames -> (S3) -> endpoint -> predictions, report and plot.

Runs on the user's machine (the ``client`` extra: PyAV, boto3, requests, matplotlib).
``api.Client`` is the Python entry point; the modules are the steps: ``extract``,
``upload``, ``predict`` (with ``targets``: local MMS, SageMaker, SageMaker async),
``report`` and ``job`` (all of them in one run). It imports nothing from
``frame_infer.serving`` or ``frame_infer.deploy``.
"""
