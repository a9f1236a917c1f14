"""Which files a ``docker build`` context holds, by Docker's ``.dockerignore`` rules.

Docker (moby's patternmatcher): patterns are Go globs on slash-separated paths relative
to the context root (``*`` and ``?`` stop at ``/``, ``**`` crosses directories); a
pattern that matches a directory matches everything inside it; ``!`` re-includes; the
last pattern that matches a path decides. Enough of it to check this repository's file.
"""
from __future__ import annotations

import os
import re
from pathlib import Path


def read_patterns(path: Path) -> list[tuple[bool, re.Pattern]]:
    """(re-include?, regex) per pattern line of a ``.dockerignore``."""
    patterns = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        include = line.startswith("!")
        glob = os.path.normpath(line.lstrip("!").strip().lstrip("/"))
        patterns.append((include, re.compile(_translate(glob))))
    return patterns


def _translate(glob: str) -> str:
    out, i = "", 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif glob.startswith("**", i):
            out, i = out + ".*", i + 2
        elif glob[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif glob[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(glob[i]), i + 1
    return out


def excluded(relative: str, patterns: list[tuple[bool, re.Pattern]]) -> bool:
    """Whether the context leaves out ``relative`` (a path under the context root)."""
    parts = relative.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    result = False
    for include, pattern in patterns:
        if any(pattern.fullmatch(c) for c in candidates):
            result = not include
    return result


def context_files(root: Path) -> list[str]:
    """The files ``docker build`` would send from ``root``, as relative paths."""
    patterns = read_patterns(root / ".dockerignore")
    found = []
    for folder, dirs, files in os.walk(root):
        base = Path(folder).relative_to(root).as_posix()
        prefix = "" if base == "." else base + "/"
        # A left-out folder is skipped unless a later "!" pattern could bring part back.
        dirs[:] = [d for d in dirs if not excluded(prefix + d, patterns)
                   or any(include and pattern.pattern.startswith(re.escape(prefix + d))
                          for include, pattern in patterns)]
        found += [prefix + f for f in files if not excluded(prefix + f, patterns)]
    return sorted(found)
