"""``weintervene import-directory`` and ``export-directory`` on the embedded SQLite default."""
import json
import os
import subprocess
import sys

from tests.support.shared_data import dataset


def run(tmp_path, *args):
    env = {**os.environ, "WEINTERVENE_DATA_DIR": str(tmp_path / "data"), "PYTHONWARNINGS": "ignore"}
    env.pop("WEINTERVENE_DATABASE_URL_TEMPLATE", None)
    env.pop("WEINTERVENE_DIRECTORY_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "weintervene.cli", *args], env=env, capture_output=True, text=True, timeout=300)


def test_import_then_reimport_then_export(tmp_path):
    first = run(tmp_path, "import-directory", str(dataset("ohana-sanmateo")), "--source", "ohana-sanmateo", "--json")
    assert first.returncode == 0, first.stderr[-2000:]
    report = json.loads(first.stdout)
    assert report["totals"]["service"]["created"] == 23
    second = run(tmp_path, "import-directory", str(dataset("ohana-sanmateo")), "--source", "ohana-sanmateo")
    assert second.returncode == 0
    assert "created 0, updated 0" in second.stdout and "dropped from locations.csv" in second.stdout
    out = run(tmp_path, "export-directory", str(tmp_path / "out.json"), "--format", "json")
    assert out.returncode == 0, out.stderr[-2000:]
    assert len(json.loads((tmp_path / "out.json").read_text())) == 23
    bad = run(tmp_path, "import-directory", str(tmp_path / "nothing-here"))
    assert bad.returncode == 2 and "cannot import" in bad.stderr
