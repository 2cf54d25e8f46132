"""The demo's "Messages sent" page: a teacher's walk-in email share arrives, readable in the browser."""
from __future__ import annotations

import time

import pytest
import requests

from tests.browser.conftest import PASSWORD
from tests.browser.test_journeys import create_service
from tests.support.infra import free_port, random_suffix
from weintervene.catcher import CAUGHT_FILE, start_catcher
from weintervene.config import Settings

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture
def catcher(system, patch_settings):
    """The demo's catcher on free ports, in the running system's data directory (as `make run` has it)."""
    smtp_port, sms_url = free_port(), f"http://127.0.0.1:{free_port()}"
    child = start_catcher(Settings(dev_mode=True, data_dir=system.settings.data_dir, smtp_port=smtp_port,
                                   sms_base_url=sms_url))
    patch_settings(smtp_port=smtp_port, sms_base_url=sms_url)
    yield
    child.terminate()
    child.wait(timeout=10)
    (system.settings.data_dir / CAUGHT_FILE).unlink()  # the other browser tests run without a demo catcher


def test_a_share_arrives_on_messages_sent(page, people, system, catcher):
    word = random_suffix(8)
    service = create_service(system, people, f"Food Pantry {word}")
    teacher = system.login(people["teacher"]["email"], PASSWORD)
    address = f"walkin-{word.lower()}@family.example"
    r = teacher.post(system.url("/api/v1/referrals"), json={
        "service_ids": [service["id"]], "channel": "email", "recipient_email": address, "language": "es"}, timeout=30)
    assert r.status_code == 201, r.text
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        caught = teacher.get(system.url("/api/v1/dev/messages"), timeout=30).json()["items"]
        if any(m["to"] == address for m in caught):
            break
        time.sleep(0.2)
    page.open("/signin")
    page.sign_in(people["teacher"]["email"])
    page.dismiss_policy_banner()
    page.click("#site-nav a[href='/messages']")
    page.wait_heading("Messages sent")
    page.wait_for_selector(".caught-message[data-channel=email]")
    card = page.text_content(".caught-message")
    assert address in card and f"Food Pantry {word}" in card and "es" in card
    assert page.get_attribute(".caught-message pre", "lang") == "es"
    page.assert_accessible("messages sent")
    page.shot("messages-sent")
    assert requests.get(system.url("/api/v1/dev/messages"), timeout=30).status_code == 401  # signed in only
