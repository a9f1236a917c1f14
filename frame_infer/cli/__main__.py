"""``python -m frame_infer.cli``: the same as the ``frame-infer`` command."""
import sys

from . import main

sys.exit(main())
