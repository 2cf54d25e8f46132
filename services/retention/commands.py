"""Retention's ``weintervene`` command: ``audit verify`` checks the hash-chained audit log.

Declared in ``pyproject.toml`` as the ``weintervene.commands`` entry point ``retention``, so the
shared library's CLI (:mod:`weintervene.cli`) carries it without importing retention.

Example::

    weintervene audit verify    # exit 1 and the first broken entry's number on a broken chain
"""
from __future__ import annotations

import json
import sys

from weintervene.config import Settings


def register(subparsers) -> None:
    """Add ``audit verify`` to ``weintervene``'s subcommand parser."""
    audit = subparsers.add_parser("audit", help="retention's audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser("verify", help="check the hash chain; exit 1 at the first broken entry")
    verify.set_defaults(func=cmd_audit_verify)


def cmd_audit_verify(args) -> int:
    """Check retention's hash-chained audit log; exit 1 and name the first broken entry."""
    from sqlalchemy.orm import Session

    from services.retention.audit import verify_chain
    from weintervene.db import make_engine
    from weintervene.runner import configure

    settings = Settings.from_env()
    configure(settings)
    engine = make_engine(settings.database_url("retention"))
    try:
        with Session(engine) as session:
            result = verify_chain(session)
    finally:
        engine.dispose()
    print(json.dumps(result, indent=2))
    if not result["ok"]:
        broken = result["first_broken"]
        print(f"audit chain BROKEN at entry {broken['seq']}: {broken['reason']}", file=sys.stderr)
        return 1
    print(f"audit chain intact: {result['entries']} entries", file=sys.stderr)
    return 0
