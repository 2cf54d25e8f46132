"""weintervene.mail against a real SMTP server (the test sink in its own process)."""
from __future__ import annotations

import socket

import pytest

from weintervene.mail import MailConnection, MailRefused, send


@pytest.fixture
def sink(smtp_sink, patch_settings):
    from weintervene import mail

    patch_settings(smtp_host="127.0.0.1", smtp_port=smtp_sink.port)
    smtp_sink.clear()
    yield smtp_sink
    while mail._idle:  # sessions kept open by a test are not the next test's
        mail._idle.pop()[2].close()


def body(message, kind: str = "plain") -> str:
    """A decoded body part, its CRLF line ends (as sent over SMTP) read as newlines."""
    part = message.get_body((kind,))
    return part.get_content().replace("\r\n", "\n").rstrip("\n")


def received(sink, count: int) -> list:
    sink.wait_for(lambda _: len(sink.files(".eml")) >= count)
    return sorted(sink.messages(), key=lambda m: m["X-Envelope-To"])


LONG_TEXT = "\n".join(f"Line {n}: Families with children 5-18, Monday to Friday." for n in range(60))


def test_one_connection_carries_every_message_of_a_chunk(sink):
    with MailConnection() as connection:
        ids = [send(f"parent{i}@family.example", f"Service {i}", LONG_TEXT, f"<p>Hours {i}</p>",
                    connection=connection) for i in range(3)]
        assert connection.connections_opened == 1
    messages = received(sink, 3)
    assert [m["X-Envelope-To"] for m in messages] == [f"parent{i}@family.example" for i in range(3)]
    assert len({m["X-Sink-Connection"] for m in messages}) == 1  # the sink saw one SMTP session
    assert sorted(m["Message-ID"] for m in messages) == sorted(ids)
    # Several kilobytes each, in SMTP's CRLF lines (bare newlines would make one over-long line).
    assert all(body(m) == LONG_TEXT for m in messages)


def test_messages_without_a_connection_each_open_their_own(sink):
    send("a@family.example", "One", "text")
    send("b@family.example", "Two", "text")
    messages = received(sink, 2)
    assert len({m["X-Sink-Connection"] for m in messages}) == 2


def test_a_refused_recipient_fails_alone_and_the_session_goes_on(sink):
    with MailConnection() as connection:
        send("first@family.example", "Before", "text", connection=connection)
        with pytest.raises(MailRefused) as refused:
            send("refused-nobody@family.example", "Refused", "text", connection=connection)
        assert "550" in refused.value.message
        send("after@family.example", "After", "text", connection=connection)
        assert connection.connections_opened == 1
    messages = received(sink, 2)
    assert [m["X-Envelope-To"] for m in messages] == ["after@family.example", "first@family.example"]
    assert len({m["X-Sink-Connection"] for m in messages}) == 1


def test_spanish_subject_headers_and_both_bodies_arrive_intact(sink):
    send("rosa@family.example", "Un servicio para su familia: Tutoría Año Nuevo",
         "Dirección: 12 Main St\nTeléfono: 217-555-0100", "<p>Dirección: <b>12 Main St</b></p>",
         headers={"X-WeIntervene-Delivery": "d-1", "Content-Language": "es"})
    [message] = received(sink, 1)
    assert message["Subject"] == "Un servicio para su familia: Tutoría Año Nuevo"
    assert message["From"] == "WeIntervene <no-reply@weintervene.local>"
    assert message["To"] == "rosa@family.example"
    assert (message["X-WeIntervene-Delivery"], message["Content-Language"]) == ("d-1", "es")
    assert body(message) == "Dirección: 12 Main St\nTeléfono: 217-555-0100"
    assert body(message, "html") == "<p>Dirección: <b>12 Main St</b></p>"


def test_plain_text_only_message(sink):
    send("luis@family.example", "A service for your family", "Address: 12 Main St")
    [message] = received(sink, 1)
    assert message.get_content_type() == "text/plain"
    assert body(message) == "Address: 12 Main St"



def test_a_kept_session_carries_the_next_connections_messages(sink):
    with MailConnection(keep_open=True) as first:
        send("a@family.example", "One", "text", connection=first)
    with MailConnection(keep_open=True) as second:
        send("b@family.example", "Two", "text", "<p>html</p>", connection=second)
        assert (first.connections_opened, second.connections_opened) == (1, 0)
    messages = received(sink, 2)
    assert [m["X-Envelope-To"] for m in messages] == ["a@family.example", "b@family.example"]
    assert len({m["X-Sink-Connection"] for m in messages}) == 1


def test_a_kept_session_that_no_longer_answers_is_replaced_before_sending(sink):
    from weintervene import mail

    with MailConnection(keep_open=True) as first:
        send("a@family.example", "One", "text", connection=first)
    since, server, smtp = mail._idle[-1]
    smtp.sock.shutdown(socket.SHUT_RDWR)  # gone meanwhile (the server dropped it, a network cut…)
    mail._idle[-1] = (since - mail.CHECK_AFTER_SECONDS - 1, server, smtp)  # idle long enough to be checked
    with MailConnection(keep_open=True) as second:
        send("b@family.example", "Two", "text", connection=second)
        assert second.connections_opened == 1
    messages = received(sink, 2)
    assert len({m["X-Sink-Connection"] for m in messages}) == 2


def test_a_session_idle_too_long_is_not_taken(sink):
    from weintervene import mail

    with MailConnection(keep_open=True) as first:
        send("a@family.example", "One", "text", connection=first)
    since, server, smtp = mail._idle[-1]
    mail._idle[-1] = (since - mail.IDLE_SECONDS - 1, server, smtp)
    with MailConnection(keep_open=True) as second:
        send("b@family.example", "Two", "text", connection=second)
        assert second.connections_opened == 1
    assert len({m["X-Sink-Connection"] for m in received(sink, 2)}) == 2


def test_a_failed_session_is_not_kept(sink, patch_settings):
    from weintervene import mail

    with MailConnection(keep_open=True) as connection:
        with pytest.raises(MailRefused):  # a refused recipient: smtplib resets, the session goes on
            send("refused-nobody@family.example", "Refused", "text", connection=connection)
    assert len(mail._idle) == 1
    mail._idle.pop()[2].close()
    with MailConnection(keep_open=True) as connection:
        send("a@family.example", "One", "text", connection=connection)
        connection.smtp.sock.shutdown(socket.SHUT_RDWR)  # then the connection breaks: dropped, not kept
        with pytest.raises(mail.MailUnavailable):
            send("b@family.example", "Two", "text", connection=connection)
    assert mail._idle == []

SUBJECTS = [
    "A service for your family: Casa Azul Counseling",  # short ASCII
    "Un servicio para su familia: Tutoría Año Nuevo",  # non-ASCII: RFC 2047 words
    "3 services for your family: " + "Northside Food Pantry, " * 4,  # long: folded
    "two  spaces inside", "a trailing space ", " a leading space", "a\ttab", "",
]
BODIES = [
    ("Dirección: 12 Main St\n" + LONG_TEXT, "<p>Dirección: <b>12 Main St</b></p>\n"),
    ("Tutoría " * 40 + "\n\n\nño", "<p>" + "ñ" * 300 + "</p>"),  # long lines: soft breaks
    ("CRLF\r\nCR\rLF\nend", "x = 1; y =3D 2\t\n"),  # every line end; '=' itself
    ("From the school\n.a dot line\ntrailing spaces   \ntrailing tab\t\n", "<p> </p>"),
    ("a" * 75 + "=" + "b" * 80, "c" * 76 + "\n" + "d" * 77),  # an escape at the soft-break point
    ("Address: 12 Main St", None),  # plain text only
    ("Dirección: 12 Main St\n", None),
]


@pytest.mark.parametrize("subject", SUBJECTS)
@pytest.mark.parametrize("text, html", BODIES)
def test_wire_bytes_are_the_email_packages_own(subject, text, html):
    # What goes on the wire is written directly; it must be exactly what the email
    # package's generator (stock compat32, a Header object per header) writes for
    # the message build_message describes, with the same Message-ID and boundary.
    from email import policy

    from weintervene.mail import build_message, wire_bytes

    headers = {"X-WeIntervene-Delivery": "0f0e0d0c-1111-2222-3333-444455556666", "Content-Language": "es"}
    message = build_message("Rosa Díaz <rosa@family.example>", subject, text, html, headers=headers)
    expected = message.as_bytes(policy=policy.compat32.clone(linesep="\r\n"))
    boundary = message.get_boundary() if html is not None else None
    assert wire_bytes(message["Message-ID"], boundary, "Rosa Díaz <rosa@family.example>", subject, text, html,
                      headers) == expected


def test_a_part_quoting_its_own_boundary_does_not_end_the_part(sink):
    # The boundary is not checked against the parts (quoted-printable cannot contain it):
    # a text with the very boundary on lines of its own still arrives whole.
    from unittest import mock

    from weintervene import mail

    boundary = mail._boundary()
    text = f"Before\n--{boundary}\n--{boundary}--\nAfter"
    with mock.patch.object(mail, "_boundary", return_value=boundary):
        send("rosa@family.example", "Boundary", text, f"<pre>{text}</pre>")
    [message] = received(sink, 1)
    assert body(message) == text and body(message, "html") == f"<pre>{text}</pre>"
