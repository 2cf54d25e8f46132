"""The share dialog's language list is the server's: what the sharer is told a contact will
receive is what referrals sends (gateway/static/js/languages.js vs localization)."""
from __future__ import annotations

import re
from pathlib import Path

from services.referrals import localization

LANGUAGES_JS = Path(__file__).resolve().parents[2] / "gateway" / "static" / "js" / "languages.js"


def test_the_dialog_offers_exactly_the_shipped_languages_in_the_same_order():
    source = LANGUAGES_JS.read_text(encoding="utf-8")
    block = source.split("export const SHIPPED = [", 1)[1].split("];", 1)[0]
    codes = re.findall(r'\["([a-z]{2,3})", "', block)
    assert tuple(codes) == localization.SHIPPED
    assert f'export const DIRECTORY_LANGUAGE = "{localization.DIRECTORY_CONTENT_LANGUAGE}";' in source


def test_the_dialog_and_the_server_normalise_language_tags_alike():
    source = LANGUAGES_JS.read_text(encoding="utf-8")
    aliases = dict(re.findall(r'(\w+): "(\w+)"', source.split("const ALIASES = {", 1)[1].split("}", 1)[0]))
    for alias, code in aliases.items():
        assert localization.normalise(alias) == code
    assert localization.normalise("es-MX") == "es" and localization.normalise("fr") is None
    assert localization.delivered_language("fr") == "en"
    assert localization.delivered_language("fr", second="ht") == "ht"
