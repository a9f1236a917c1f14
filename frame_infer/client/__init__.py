"""The client: video -> frames -> (S3) -> endpoint -> predictions, report and plot.

Runs on the user's machine (the ``client`` extra: PyAV, boto3, requests, matplotlib).
``api.Client`` is the Python entry point; the modules are the steps: ``extract``,
``upload``, ``predict`` (with ``targets``: local MMS, SageMaker, SageMaker async),
``report`` and ``job`` (all of them in one run). It imports nothing from
``frame_infer.serving`` or ``frame_infer.deploy``.

One face's way through ``run --faces``, each module once, in order:

1. ``extract`` cuts the frame, finds its faces (``faces``: a ``FaceCrop`` each), gives
   each the id of its person (``tracks``) and writes the crop and the frame's
   ``manifest`` line (``source_record`` keeps which video and options the folder holds;
   ``outlock`` keeps a second run out of the same folder);
2. ``sources`` turns the line into ``items.Item`` s (one per face; a faceless frame is one
   ``NO_FACE`` item), and says once, in a ``Work``, that the job has faces;
3. ``engine`` packs the item into a request (``payload``), sends it to the target
   (``targets``), retries, and records the row ``Item.row()`` + the answer in the sink;
4. ``journal`` keeps the row (keyed by ``Item.key``) and writes ``predictions.jsonl``;
   ``summary`` counts the rows and gives the exit code;
5. ``records`` reads the rows back (``Item.from_row``) into the report's value (per
   second and per person), which ``report`` writes as CSV and markdown, ``timeline``
   draws, ``annotate`` draws onto the video and ``dataframe`` turns into a table.
"""
