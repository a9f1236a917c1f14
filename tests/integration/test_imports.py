"""Every module imports on its own, first, in a fresh interpreter: no hidden import order."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# One interpreter; before each module every project module is forgotten, so each import
# starts from nothing of ours (third-party packages stay loaded: they are not the subject).
PROBE = """
import importlib, sys, traceback
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m.split(".")[0] in ("frame_infer", "model_handler")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed.append(name + ": " + traceback.format_exc().strip().splitlines()[-1])
print("\\n".join(failed))
"""


def test_each_module_imports_alone():
    names = []
    for package in ("frame_infer", "model_handler"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__main__":
                continue  # running it is the CLI itself
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    result = subprocess.run([sys.executable, "-c", PROBE, *names], capture_output=True,
                            text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    assert len(names) > 40 and result.stdout.strip() == "", result.stdout
