"""Old option spellings, kept for one release as hidden aliases.

Issue 13 gave every idea one option name across the commands (README.md, "Options at a
glance"). Scripts written against the old names keep working until the next release: an
old spelling stores into the same ``dest`` as the new one, is hidden from ``--help`` and
prints one line to stderr naming the new spelling.
"""
from __future__ import annotations

import argparse
import sys


def deprecation_note(prog: str, old: str, new: str) -> None:
    """One line on stderr: ``old`` still works this release; write ``new``."""
    print(f"{prog}: {old} is deprecated and goes away in the next release; write {new}",
          file=sys.stderr)


class OldSpelling(argparse.Action):
    """Stores like the option it was renamed to, after a deprecation note.

    ``primary`` is that option's action when it is required: using the old spelling
    satisfies the requirement. argparse checks required options only after every
    argument was consumed, so clearing the flag here is enough; the parser is built anew
    for each command line (``frame_infer.cli.build_parser``), so nothing leaks into the
    next parse.
    """

    def __init__(self, option_strings, dest, new: str, primary=None, **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.new = new
        self.primary = primary

    def __call__(self, parser, namespace, values, option_string=None):
        deprecation_note(parser.prog, option_string, self.new)
        if self.primary is not None:
            self.primary.required = False
        setattr(namespace, self.dest, values)


class RetiredSwitch(OldSpelling):
    """An old switch (no value) whose behaviour is now spelled another way: the note, and
    with ``implies`` that value stored unless the new option already gave one."""

    def __init__(self, option_strings, dest, new: str, implies=None, **kwargs):
        super().__init__(option_strings, dest, new, nargs=0, default=argparse.SUPPRESS,
                         help=argparse.SUPPRESS, **kwargs)
        self.implies = implies

    def __call__(self, parser, namespace, values, option_string=None):
        deprecation_note(parser.prog, option_string, self.new)
        if self.implies is not None and not getattr(namespace, self.dest, None):
            setattr(namespace, self.dest, self.implies)


def add_renamed(parser: argparse.ArgumentParser, new: str, *old: str,
                **kwargs) -> argparse.Action:
    """Add option ``new`` (``kwargs`` as for ``add_argument``) and each spelling in ``old``
    as a hidden alias of it; returns ``new``'s action."""
    primary = parser.add_argument(new, **kwargs)
    for spelling in old:
        parser.add_argument(spelling, dest=primary.dest, type=primary.type,
                            choices=primary.choices, metavar=primary.metavar,
                            default=argparse.SUPPRESS, help=argparse.SUPPRESS,
                            action=OldSpelling, new=new,
                            primary=primary if primary.required else None)
    return primary


def renamed_options(parser: argparse.ArgumentParser) -> dict[str, str]:
    """``{old spelling: new spelling}`` of ``parser``'s hidden aliases (for tests, docs)."""
    return {spelling: action.new for action in parser._actions
            if isinstance(action, OldSpelling) for spelling in action.option_strings}
