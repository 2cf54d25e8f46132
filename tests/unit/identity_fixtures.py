"""Shared fixtures of identity's unit tests: the service with nameko's worker_factory on a
real SQLite database migrated by identity's own chain, and the mail it would send.

Example::

    from tests.unit.identity_fixtures import PASSWORD, sent, service, session  # noqa: F401

    def test_invitation(service, sent):
        ...
"""
from __future__ import annotations

import pytest
from nameko.testing.services import worker_factory

from services.identity.service import IdentityService
from tests.support.databases import migrated_session

PASSWORD = "unit passphrase 2026"


@pytest.fixture
def session(tmp_path):
    with migrated_session(tmp_path, "identity") as db:
        yield db


@pytest.fixture
def sent(monkeypatch):
    """Emails the service would send: [(to, subject, text)]."""
    outbox = []
    monkeypatch.setattr("weintervene.mail.send", lambda to, subject, text, html=None, headers=None: outbox.append((to, subject, text)))
    return outbox


@pytest.fixture
def service(session):
    return worker_factory(IdentityService, db=session)
