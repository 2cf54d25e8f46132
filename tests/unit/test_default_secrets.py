"""Outside development mode no process starts with a published default or empty secret."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from weintervene.config import (
    DEFAULT_SECRET_KEY, DEFAULT_SMS_TOKEN, SECRET_SETTINGS, DefaultSecretError, Settings, missing_secrets,
    require_secrets,
)

ROOT = Path(__file__).resolve().parents[2]

# Not the published development pair: what a deployment sets (weintervene.context_signing).
REAL_CONTEXT_KEYS = {"context_signing_key": "prod-1:" + "s" * 43, "context_verify_keys": "prod-1:" + "v" * 43}
REAL_CONTEXT_ENV = {"WEINTERVENE_" + name.upper(): value for name, value in REAL_CONTEXT_KEYS.items()}


def _weintervene(args, env_changes, tmp_path):
    """``weintervene <args>`` in a process of its own, with only these WEINTERVENE_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEINTERVENE_")}
    env.update({"WEINTERVENE_DATA_DIR": str(tmp_path), "PYTHONWARNINGS": "ignore", **env_changes})
    return subprocess.run([sys.executable, "-m", "weintervene.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args", [["run"], ["run", "--service", "gateway"], ["run", "--service", "referrals"], ["migrate"]])
def test_production_refuses_to_start_with_the_default_key_naming_it(args, tmp_path):
    done = _weintervene(args, {"AMQP_URI": "amqp://guest:guest@127.0.0.1:1/"}, tmp_path)
    assert done.returncode != 0
    [line] = [l for l in done.stderr.splitlines() if l.startswith("refusing to start")]
    assert re.search(r"\bWEINTERVENE_SECRET_KEY\b", line)
    # The referrals service (and so `run` of everything) also needs the SMS token; migrate does not.
    assert ("WEINTERVENE_SMS_TOKEN" in line) == (args[-1] in ("run", "referrals"))
    assert not (tmp_path / "identity.db").exists()  # refused before touching anything


def test_an_empty_secret_is_refused_like_a_default(tmp_path):
    done = _weintervene(["run", "--service", "referrals"],
                        {"WEINTERVENE_SECRET_KEY": "a real secret", "WEINTERVENE_SMS_TOKEN": " ", **REAL_CONTEXT_ENV},
                        tmp_path)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1] == (
        "refusing to start: WEINTERVENE_SMS_TOKEN is empty or a published default; set a secret value "
        "(or WEINTERVENE_DEV_MODE=1 for local development only)")


def test_development_mode_accepts_the_defaults(tmp_path):
    done = _weintervene(["migrate", "--service", "analytics"], {"WEINTERVENE_DEV_MODE": "1"}, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "analytics: up to date" in done.stdout
    require_secrets(Settings(dev_mode=True), ["gateway", "referrals"])  # no refusal


def test_real_secrets_start():
    cfg = Settings(secret_key="k" * 43, sms_token="t" * 32, **REAL_CONTEXT_KEYS)
    assert missing_secrets(cfg, ["identity", "directory", "referrals", "analytics", "retention", "gateway", "migrate"]) == []
    require_secrets(cfg, ["referrals"])


def test_each_component_is_refused_only_for_the_secrets_it_uses():
    cfg = Settings(secret_key="a real secret", **REAL_CONTEXT_KEYS)  # the SMS token left at its default
    assert missing_secrets(cfg, ["analytics", "gateway"]) == []
    assert missing_secrets(cfg, ["referrals"]) == ["WEINTERVENE_SMS_TOKEN"]
    with pytest.raises(DefaultSecretError) as refused:
        require_secrets(cfg, ["referrals"])
    assert "WEINTERVENE_SMS_TOKEN" in str(refused.value) and isinstance(refused.value, SystemExit)


def test_the_one_list_names_every_default_secret():
    by_field = {s.field: s for s in SECRET_SETTINGS}
    assert DEFAULT_SECRET_KEY in by_field["secret_key"].defaults
    assert DEFAULT_SMS_TOKEN in by_field["sms_token"].defaults
    assert {s.variable for s in SECRET_SETTINGS} >= {"WEINTERVENE_SECRET_KEY", "WEINTERVENE_SMS_TOKEN",
                                                     *REAL_CONTEXT_ENV}
    # Only the gateway signs; every component verifies.
    assert missing_secrets(Settings(secret_key="a real secret", sms_token="t" * 32), ["analytics"]) == [
        "WEINTERVENE_CONTEXT_VERIFY_KEYS"]
    assert missing_secrets(Settings(secret_key="a real secret", sms_token="t" * 32), ["gateway"]) == [
        "WEINTERVENE_CONTEXT_SIGNING_KEY", "WEINTERVENE_CONTEXT_VERIFY_KEYS"]


def test_dev_mode_from_the_environment():
    assert Settings.from_env({}).dev_mode is False
    assert Settings.from_env({"WEINTERVENE_DEV_MODE": "1"}).dev_mode is True


def test_a_malformed_key_list_is_refused_at_start():
    with pytest.raises(DefaultSecretError, match="WEINTERVENE_PREVIOUS_SECRET_KEYS"):
        require_secrets(Settings(secret_key="real", previous_secret_keys="no-colon-here"), ["gateway"])
    with pytest.raises(DefaultSecretError, match="repeats the current key id"):
        require_secrets(Settings(secret_key="real", secret_key_id="1", previous_secret_keys="1:old"), ["gateway"])
