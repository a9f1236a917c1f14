"""``python -m frame_infer.cli``: the same as the ``frame-infer`` command."""
from . import entry

entry()
