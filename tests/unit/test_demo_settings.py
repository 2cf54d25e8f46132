"""The defaults `make run` relies on: links follow the gateway's address; the catcher
listens where the SMTP and SMS settings point, and only on loopback."""
from weintervene.catcher import catcher_addresses
from weintervene.config import Settings


def test_public_base_url_follows_the_gateway_address():
    assert Settings().public_base_url == "http://127.0.0.1:8000"
    assert Settings.from_env({"WEINTERVENE_GATEWAY_ADDRESS": "127.0.0.1:8123"}).public_base_url == "http://127.0.0.1:8123"
    assert Settings.from_env({"WEINTERVENE_GATEWAY_ADDRESS": "0.0.0.0:9000"}).public_base_url == "http://localhost:9000"
    # Said otherwise (a proxy in front), it is kept as said.
    assert Settings.from_env({"WEINTERVENE_GATEWAY_ADDRESS": "0.0.0.0:9000",
                              "WEINTERVENE_PUBLIC_BASE_URL": "https://app.example.org"}).public_base_url == \
        "https://app.example.org"


def test_the_catcher_takes_the_local_defaults_and_leaves_real_servers_alone():
    assert catcher_addresses(Settings()) == (("127.0.0.1", 1025), ("127.0.0.1", 1026))
    assert catcher_addresses(Settings(smtp_host="smtp.example.org", sms_base_url="https://api.twilio.com")) == \
        (None, None)
    assert catcher_addresses(Settings(smtp_port=2525, sms_base_url="http://localhost:2626")) == \
        (("127.0.0.1", 2525), ("localhost", 2626))
