"""Directory imports cap what an archive unpacks to, and how deep an HSDS JSON nests (issue 16).

A zip bomb (a few tens of kilobytes inflating to tens of megabytes, ~1000:1) and an
archive over the total cap are refused before anything is unpacked: by the importer
(``weintervene import-directory``: exit 2 and a message naming the cap) and by the upload
route (413 ``archive_too_large`` naming the cap, no job started). An HSDS JSON nested past
the cap is refused naming its setting. Before: the importer read every member whole into
memory (``archive.read``) whatever its size, and the JSON was parsed to any depth (100,000
levels: a ``RecursionError``).

Roster uploads take CSV only (``text/csv``, capped by ``roster_max_bytes``): no archive.
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from services.directory.archives import ArchiveRefused
from services.directory.importer import import_path
from services.directory.layouts import LayoutError
from tests.support.world import build_world

ROOT = Path(__file__).resolve().parents[2]
HEADER = b"id,organization_id,name,description\n"


def bomb(megabytes: int = 40) -> bytes:
    """A services.csv of ``megabytes`` of one repeated row: ~1000:1 under deflate."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open("services.csv", "w") as member:
            member.write(HEADER)
            row = b",,,\n" * (256 * 1024)
            for _ in range(megabytes):
                member.write(row)
    return buffer.getvalue()


def plain_zip(total_bytes: int) -> bytes:
    """Incompressible members adding up to ``total_bytes`` (each well under any ratio cap)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        part = total_bytes // 4
        for n in range(4):
            archive.writestr(f"part{n}.csv", HEADER + os.urandom(part).hex().encode()[:part])
    return buffer.getvalue()


def test_a_zip_bomb_is_refused_naming_the_ratio_cap(tmp_path):
    path = tmp_path / "bomb.zip"
    path.write_bytes(bomb())
    assert path.stat().st_size < 200 * 1024
    with pytest.raises(ArchiveRefused) as refused:
        import_path(None, path)
    assert "WEINTERVENE_DIRECTORY_IMPORT_MAX_RATIO" in str(refused.value) and "services.csv" in str(refused.value)


def test_an_archive_over_the_total_cap_is_refused(tmp_path, patch_settings):
    patch_settings(directory_import_max_unpacked_bytes=1024 * 1024)
    path = tmp_path / "big.zip"
    path.write_bytes(plain_zip(2 * 1024 * 1024))
    with pytest.raises(ArchiveRefused) as refused:
        import_path(None, path)
    assert "WEINTERVENE_DIRECTORY_IMPORT_MAX_UNPACKED_BYTES" in str(refused.value) and "1.0 MiB" in str(refused.value)


def test_the_cli_names_the_cap_and_exits_2(tmp_path):
    path = tmp_path / "bomb.zip"
    path.write_bytes(bomb())
    env = {**os.environ, "WEINTERVENE_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run([sys.executable, "-m", "weintervene.cli", "import-directory", str(path)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "WEINTERVENE_DIRECTORY_IMPORT_MAX_RATIO" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("levels", [100, 100_000])
def test_an_hsds_json_nested_past_the_cap_is_refused(tmp_path, levels):
    deep = "[" * levels + "]" * levels
    path = tmp_path / "services.json"
    path.write_text(json.dumps([{"id": "s1", "name": "Deep"}])[:-2] + f', "attributes": {deep}}}]')
    with pytest.raises(LayoutError) as refused:
        import_path(None, path, source="deep")
    assert "WEINTERVENE_DIRECTORY_IMPORT_JSON_MAX_DEPTH" in str(refused.value)


@pytest.fixture(scope="module")
def world(system):
    return build_world(system)


def test_the_upload_route_answers_413_naming_the_cap(world, system):
    operator = world.http("operator")
    r = operator.post(system.url("/api/v1/directory/imports?filename=bomb.zip"), data=bomb(),
                      headers={"Content-Type": "application/zip"}, timeout=60)
    assert r.status_code == 413, r.text
    error = r.json()["error"]
    assert error["code"] == "archive_too_large" and "WEINTERVENE_DIRECTORY_IMPORT_MAX_RATIO" in error["message"]
    r = operator.post(system.url("/api/v1/directory/imports?filename=broken.zip"), data=b"PK\x03\x04 not a zip",
                      headers={"Content-Type": "application/zip"}, timeout=60)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_archive", r.text


def test_a_deep_hsds_json_upload_is_refused_before_any_job_naming_the_cap(world, system):
    """A JSON upload too deeply nested is checked with the package, before a job starts: a 400
    naming the cap, not a job that fails later."""
    operator = world.http("operator")
    deep = "[" * 100_000 + "]" * 100_000
    body = ('[{"id": "s1", "name": "Deep", "attributes": %s}]' % deep).encode()
    r = operator.post(system.url("/api/v1/directory/imports?filename=deep.json&source=deep"), data=body,
                      headers={"Content-Type": "application/json"}, timeout=60)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "unrecognised_layout" and "WEINTERVENE_DIRECTORY_IMPORT_JSON_MAX_DEPTH" in error["message"]