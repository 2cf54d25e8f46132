"""`make run`'s message catcher: a share's email and SMS arrive on "Messages sent".

The services run with `make run`'s kind of settings (development mode, SMTP and SMS on
loopback, ``public_base_url`` left to its default) on free ports: never 1025/1026/8000.
The catcher is started as ``weintervene run --demo`` starts it (``start_catcher``).
"""
from __future__ import annotations

import time

import pytest
import requests

from tests.support.infra import free_port
from tests.support.referrals_system import ReferralsSystem
from weintervene.catcher import start_catcher
from weintervene.config import Settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("demo")
    smtp_port, sms_port = free_port(), free_port()
    sms_url = f"http://127.0.0.1:{sms_port}"
    catcher = start_catcher(Settings(dev_mode=True, data_dir=data_dir, smtp_port=smtp_port, sms_base_url=sms_url))
    assert catcher is not None
    try:
        system = ReferralsSystem(data_dir, smtp_port, sms_url)
        try:
            yield system
        finally:
            system.stop()
    finally:
        catcher.terminate()
        catcher.wait(timeout=10)


@pytest.fixture(scope="module")
def world(demo):
    return demo.make_world()


def wait_for_messages(session, url, predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        r = session.get(url, timeout=30)
        assert r.status_code == 200, r.text
        found = [m for m in r.json()["items"] if predicate(m)]
        if found or time.monotonic() > deadline:
            return r.json(), found
        time.sleep(0.2)


def test_a_share_by_sms_and_email_arrives_on_messages_sent(demo, world):
    teacher = demo.login(world.emails["teacher"])
    mobile = world.contacts[world.mother]["mobile"]
    luis = world.contacts[world.father]["email"]
    for contact, channel in ((world.mother, "sms"), (world.father, "email")):
        r = teacher.post(demo.url("/api/v1/referrals"), json={
            "student_id": world.student, "contact_ids": [contact], "service_ids": [world.services["counseling"]],
            "channel": channel, "note": "Pregunte por Ana"}, timeout=30)
        assert r.status_code == 201, r.text
    operator = demo.login(world.emails["operator"])
    url = demo.url("/api/v1/dev/messages")
    page, [sms] = wait_for_messages(operator, url, lambda m: m["channel"] == "sms" and m["to"] == mobile)
    assert page["catcher_running"] is True
    assert "Su escuela le compartió un servicio" in sms["text"] and "Pregunte por Ana" in sms["text"]
    _, [mail] = wait_for_messages(operator, url, lambda m: m["channel"] == "email" and m["to"] == luis)
    assert mail["subject"] == "A service for your family: Casa Azul Counseling"
    assert mail["language"] == "en"
    assert "Address: 12 Main St" in mail["text"] and "Casa Azul Counseling" in mail["html"]
    # While the demo's catcher runs, every demo account reads the page too (the teacher sees it arrive).
    r = teacher.get(url, timeout=30)
    assert r.status_code == 200 and mobile in [m["to"] for m in r.json()["items"]]
    # The web app offers the page to everyone in this demo.
    assert 'name="wi-dev-messages" content="demo"' in teacher.get(demo.url("/search"), timeout=30).text


def test_links_use_the_port_the_gateway_listens_on(demo, world):
    port = demo.settings.gateway_address.rsplit(":", 1)[1]
    assert port != "8000"
    teacher = demo.login(world.emails["teacher"])
    r = teacher.post(demo.url("/api/v1/referrals"), json={
        "student_id": world.student, "service_ids": [world.services["pantry1"]], "channel": "link"}, timeout=30)
    assert r.status_code == 201, r.text
    [item] = r.json()["items"]
    assert item["link_url"].startswith(f"http://127.0.0.1:{port}/r/")
    assert requests.get(item["link_url"], timeout=30).status_code == 200
    assert item["print_url"].startswith(f"http://127.0.0.1:{port}/api/v1/referrals/")
    # A password reset link, read from what the catcher caught.
    r = requests.post(demo.url("/api/v1/password-resets"), json={"email": world.emails["teacher2"]}, timeout=30)
    assert r.status_code in (200, 202, 204), r.text
    operator = demo.login(world.emails["operator"])
    _, [reset] = wait_for_messages(operator, demo.url("/api/v1/dev/messages"),
                                   lambda m: m["to"] == world.emails["teacher2"] and "reset-password" in m["text"])
    assert f"http://127.0.0.1:{port}/reset-password#token=" in reset["text"]


def test_nothing_of_it_outside_development_mode(demo, world, patch_settings, tmp_path):
    operator = demo.login(world.emails["operator"])
    teacher = demo.login(world.emails["teacher"])
    # Development mode without a catcher (another data directory): the operator's alone.
    patch_settings(data_dir=tmp_path)
    r = operator.get(demo.url("/api/v1/dev/messages"), timeout=30)
    assert r.status_code == 200 and r.json() == {"catcher_running": False, "items": []}
    assert teacher.get(demo.url("/api/v1/dev/messages"), timeout=30).status_code == 403
    # Production: no page, no endpoint, and no catcher is started.
    patch_settings(dev_mode=False, data_dir=demo.settings.data_dir)
    r = operator.get(demo.url("/api/v1/dev/messages"), timeout=30)
    assert r.status_code == 404, r.text
    assert "wi-dev-messages" not in operator.get(demo.url("/search"), timeout=30).text
    assert start_catcher(Settings(dev_mode=False, data_dir=tmp_path, smtp_port=free_port(),
                                  sms_base_url=f"http://127.0.0.1:{free_port()}")) is None


def test_the_catcher_speaks_smtp_and_the_sms_api_properly(tmp_path):
    """What smtplib and the SMS client send is kept as sent: a line starting with a dot survives
    SMTP's dot-stuffing, non-ASCII text is decoded, and what is not the Messages API is refused."""
    import smtplib

    from weintervene.catcher import caught_messages

    smtp_port, sms_port = free_port(), free_port()
    child = start_catcher(Settings(dev_mode=True, data_dir=tmp_path, smtp_port=smtp_port,
                                   sms_base_url=f"http://127.0.0.1:{sms_port}"))
    try:
        body = ("Content-Type: text/plain; charset=utf-8\r\nContent-Language: vi\r\nSubject: =?utf-8?q?Xin_ch=C3=A0o?="
                "\r\n\r\nD\xf2ng 1\r\n.d\xf2ng b\u1eaft \u0111\u1ea7u b\u1eb1ng d\u1ea5u ch\u1ea5m\r\n").encode()
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as smtp:
            smtp.sendmail("no-reply@weintervene.local", ["me@family.example"], body)
            smtp.sendmail("no-reply@weintervene.local", ["me2@family.example"], body)  # a second on one session
        sms = f"http://127.0.0.1:{sms_port}/2010-04-01/Accounts/AC-demo/Messages.json"
        assert requests.post(sms, data={"To": "+15551230000", "From": "+15550000000", "Body": "Xin chào"},
                             timeout=10).status_code == 201
        assert requests.post(sms, data={"To": "+15551230000"}, timeout=10).status_code == 400
        assert requests.post(f"http://127.0.0.1:{sms_port}/other", data={"To": "x", "Body": "y"},
                             timeout=10).status_code == 404
        caught = caught_messages(tmp_path)
        assert [m["to"] for m in caught] == ["+15551230000", "me2@family.example", "me@family.example"]
        mail = caught[-1]
        assert mail["subject"] == "Xin chào" and mail["language"] == "vi"
        assert mail["text"] == "D\xf2ng 1\n.d\xf2ng b\u1eaft \u0111\u1ea7u b\u1eb1ng d\u1ea5u ch\u1ea5m\n"
        assert caught[0]["text"] == "Xin chào" and caught[0]["channel"] == "sms"
    finally:
        child.terminate()
        child.wait(timeout=10)
