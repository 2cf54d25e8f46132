"""The restore drill (scripts/restore-drill.sh, docs/DEPLOY.md "Backup and restore") on the
local PostgreSQL: each service's database dumped with pg_dump -Fc and restored with pg_restore
into a scratch database is the same database (tables, row counts, migration, a marker row)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.manifests import ROOT
from weintervene.config import SERVICES

pytestmark = pytest.mark.integration


@pytest.mark.timeout(400)
def test_every_services_database_survives_a_dump_and_restore():
    weintervene = Path(sys.executable).with_name("weintervene")
    result = subprocess.run(["bash", str(ROOT / "scripts" / "restore-drill.sh")], capture_output=True, text=True,
                            env={**os.environ, "WEINTERVENE": str(weintervene)}, timeout=390)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for service in SERVICES:
        assert any(line.startswith(f"{service}: restored") and "identical" in line for line in lines), result.stdout
    leftover = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-XAtc",
                               "SELECT count(*) FROM pg_database WHERE datname LIKE 'wi\\_drill\\_%'"],
                              capture_output=True, text=True)
    assert leftover.stdout.strip() == "0", "the drill left its scratch databases behind"
