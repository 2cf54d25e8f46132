"""The README is for the people who use the product: its settings table is the code's, and it
links nothing outside the repository.

The table under "## Configuration" has one row per field of ``weintervene.config.Settings``:
``| `field` | `VARIABLE` | default | meaning |``. A field added to ``Settings`` without a row, a row
naming a field that does not exist, a wrong variable or a default that changed all fail here, so
the README says what the code does.

Example::

    | `smtp_port` | `WEINTERVENE_SMTP_PORT` | `1025` | its port |
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from weintervene.config import SECRET_SETTINGS, SERVICES, Settings

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"

ROW = re.compile(r"^\| `(?P<field>[^`]+)` \| `(?P<variable>[^`]+)` \| (?P<default>[^|]+?) \| (?P<meaning>.+) \|$")
# Variables that are not WEINTERVENE_<FIELD>: the broker's conventional name, and one URL per service.
SPECIAL_VARIABLES = {"amqp_uri": "AMQP_URI", "database_urls": "WEINTERVENE_<SERVICE>_DATABASE_URL"}
SECRET_FIELDS = {secret.field for secret in SECRET_SETTINGS}
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


def _section(text: str, heading: str) -> str:
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else len(text)]


def readme_settings(text: str) -> dict[str, dict]:
    """The rows of the configuration table, by field name."""
    rows = {}
    for line in _section(text, "Configuration").splitlines():
        found = ROW.match(line)
        if found:
            assert found["field"] not in rows, f"{found['field']} has two rows in the README"
            rows[found["field"]] = found.groupdict()
    return rows


def default_cell(field: dataclasses.Field) -> str:
    """How the README writes a field's default: as one would set the variable."""
    if field.name in SECRET_FIELDS:
        return "development default"
    value = field.default if field.default is not dataclasses.MISSING else field.default_factory()
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float):
        return f"`{value:g}`"
    if isinstance(value, dict):
        return "(none)" if not value else f"`{value}`"
    if value == "":
        return "(empty)"
    return f"`{value}`"


def test_every_setting_is_in_the_readme_and_nothing_else():
    rows = readme_settings(README.read_text(encoding="utf-8"))
    fields = {f.name for f in dataclasses.fields(Settings)}
    assert sorted(fields - rows.keys()) == [], "Settings fields missing from the README's table"
    assert sorted(rows.keys() - fields) == [], "the README's table names settings that do not exist"


@pytest.mark.parametrize("field", dataclasses.fields(Settings), ids=lambda f: f.name)
def test_each_row_names_the_variable_and_default_the_code_reads(field):
    row = readme_settings(README.read_text(encoding="utf-8")).get(field.name)
    if row is None:
        pytest.fail(f"{field.name} has no row in the README's configuration table")
    assert row["variable"] == SPECIAL_VARIABLES.get(field.name, "WEINTERVENE_" + field.name.upper())
    assert row["default"] == default_cell(field)
    assert row["meaning"].strip(), f"{field.name} says nothing about what it means"


def test_every_variable_the_readme_names_anywhere_is_read():
    """Prose too: a `WEINTERVENE_…` the README tells people to set exists (renamed ones fail)."""
    known = {SPECIAL_VARIABLES.get(f.name, "WEINTERVENE_" + f.name.upper()) for f in dataclasses.fields(Settings)}
    known |= {f"WEINTERVENE_{service.upper()}_DATABASE_URL" for service in SERVICES}
    named = set(re.findall(r"\bWEINTERVENE_[A-Z0-9_<>]*[A-Z0-9>]", README.read_text(encoding="utf-8")))
    assert sorted(named - known) == []


def test_the_variables_named_are_the_ones_read():
    """What the table says about a variable is what from_env does with it."""
    env = {"AMQP_URI": "amqp://u:p@broker:5672/x", "WEINTERVENE_IDENTITY_DATABASE_URL": "sqlite:////tmp/i.db",
           "WEINTERVENE_SMTP_PORT": "2525", "WEINTERVENE_DEV_MODE": "true"}
    parsed = Settings.from_env(env)
    assert (parsed.amqp_uri, parsed.database_url("identity"), parsed.smtp_port, parsed.dev_mode) == (
        "amqp://u:p@broker:5672/x", "sqlite:////tmp/i.db", 2525, True)


def test_the_readme_links_nothing_outside_the_repository():
    text = README.read_text(encoding="utf-8")
    outside = [url for url in re.findall(r"https?://[^\s)`'\"<>]+", text)
               if urlsplit(url).hostname not in LOCAL_HOSTS]
    assert outside == [], "the README links outside the repository"
    for target in re.findall(r"\]\(([^)\s]+)\)", text):  # Markdown links: files of this repository
        path = (ROOT / target.split("#")[0]).resolve()
        assert path.is_relative_to(ROOT), f"{target} is outside the repository"

