"""Reliable delivery of shares and reminders: retry with backoff, at most once per message.

The bookkeeping that makes "never lost, never twice" hold:

* A delivery row is committed with its share (``sharing.create_share``): an
  outage of the mail or SMS provider, or of this service, cannot lose it.
* Before sending, a worker *claims* the row with a conditional UPDATE
  (``queued`` and due -> ``sending``, attempts + 1) and commits, so two workers
  or two instances never send the same row; the attempt is logged.
* After the provider answers, the row becomes ``sent``, or goes back to
  ``queued`` with ``next_attempt_at`` pushed out exponentially, or ``failed``
  with a reason (permanent refusal, or ``delivery_max_attempts`` reached).
* A row left ``sending`` (the process died mid-send) is settled by
  :func:`recover_interrupted`: an SMS is retried with the same
  ``Idempotency-Key`` (the provider drops the duplicate); an email cannot be
  deduplicated by SMTP, so it is marked failed rather than risk a second copy.

Example::

    >>> deliver_due(sessionmaker, identity)     # called by a timer
    3
"""
from __future__ import annotations

import dataclasses
import logging
import math
from datetime import timedelta
from types import SimpleNamespace

import eventlet
from prometheus_client import Counter
from sqlalchemy import bindparam, case, insert, select, update

from services.referrals.messages import render_reminder, render_share
from services.referrals.models import Delivery, DeliveryAttempt, Referral, Share
from services.referrals.sms import SmsError, send_sms
from weintervene.config import settings
from weintervene.db import execute_then_commit, new_id, utcnow
from weintervene.errors import Forbidden, NotFound, Conflict, WeInterveneError
from weintervene.mail import MailConnection, MailRefused, MailUnavailable, send as send_email

log = logging.getLogger(__name__)

DELIVERIES = Counter("weintervene_referral_deliveries_total", "Delivery attempts by channel and result",
                     ["channel", "result"])

# Four chunks of ten in flight. A chunk's emails go out on one SMTP connection per
# EMAILS_PER_CONNECTION of them, side by side, each carrying its messages one after
# another: SMTP sends one message at a time per connection, and a message waits several
# round trips, so under load one connection per chunk could not keep up with sharing.
# A crash strands at most CONCURRENCY rows "sending" (emails among them are marked
# failed, never sent twice).
CONCURRENCY = 40
CHUNKS_IN_FLIGHT = 4
EMAILS_PER_CONNECTION = 5


class PermanentFailure(Exception):
    """Retrying cannot help (contact no longer authorised, address refused…)."""


class TemporaryFailure(Exception):
    pass


def backoff(attempts: int) -> timedelta:
    cfg = settings()
    seconds = min(cfg.delivery_backoff_seconds * (2 ** max(attempts - 1, 0)), cfg.delivery_backoff_max_seconds)
    return timedelta(seconds=seconds)


def recover_interrupted(session) -> int:
    """Settle deliveries left ``sending`` longer than ``delivery_stale_seconds``."""
    cutoff = utcnow() - timedelta(seconds=settings().delivery_stale_seconds)
    stale = session.scalars(
        select(Delivery).where(Delivery.state == "sending", Delivery.claimed_at < cutoff)
    ).all()
    for delivery in stale:
        reason = "interrupted while sending"
        if delivery.channel == "sms":
            delivery.state = "queued"  # same Idempotency-Key: the provider sends it once
            delivery.next_attempt_at = utcnow()
        else:
            reason += "; not resent so the family never receives it twice"
            _finish(delivery, "failed", reason)
        for attempt in delivery.attempt_log:
            if attempt.result == "sending":
                attempt.result, attempt.reason, attempt.finished_at = "failed", reason, utcnow()
    session.commit()
    return len(stale)


def claim(session, delivery_id: str) -> "Claimed | None":
    """Take one due delivery for this worker, or None if another took it first (:func:`claim_many`)."""
    claimed = claim_many(session, [delivery_id])
    return claimed[0] if claimed else None


def deliver_due(make_session, identity, batch: int = 200) -> int:
    """Send every due delivery (up to ``batch``), ``CONCURRENCY`` at a time; returns how many were tried.

    Per chunk: one transaction claims the chunk and reads what the messages
    need, the chunk's emails go one after another on one SMTP connection while
    its SMS requests run in parallel, and one transaction records the outcomes.
    At most ``CONCURRENCY`` deliveries are ever "sending" (``CHUNKS_IN_FLIGHT``
    chunks), so a crash strands no more rows than that.

    The family's addresses are asked from identity just before sending, one
    ``delivery_contacts`` call per (sharer, student) for the whole batch rather
    than one per delivery (:func:`prefetch_contacts`).
    """
    with make_session() as session:
        recover_interrupted(session)
        due = session.execute(
            select(Delivery.id, Delivery.recipient_kind, Delivery.recipient_id, Share.sharer_id, Share.tenant_id,
                   Share.sharer_role, Share.district_id, Share.student_id)
            .join(Share, Share.id == Delivery.share_id)
            .where(Delivery.state == "queued", Delivery.next_attempt_at <= utcnow())
            .order_by(Delivery.next_attempt_at)
            .limit(batch)
        ).all()
    if not due:
        return 0
    contacts = prefetch_contacts(identity, due)
    ids = [row.id for row in due]
    # Several chunks in flight: while one waits on its SMTP connection, the others
    # claim and send; never more than CONCURRENCY sending.
    size = max(CONCURRENCY // CHUNKS_IN_FLIGHT, 1)
    pool = eventlet.GreenPool(CHUNKS_IN_FLIGHT)
    for start in range(0, len(ids), size):
        pool.spawn_n(_deliver_chunk, make_session, identity, ids[start:start + size], contacts)
    pool.waitall()
    return len(due)


def prefetch_contacts(identity, due) -> dict:
    """{delivery id: identity's contact dict} for the contact deliveries of ``due``.

    One call per (sharer, student) with every contact named in the batch, all
    calls in flight at once. A group identity refuses or does not answer is left
    out: each of its deliveries then asks alone, so a refusal lands on exactly
    the delivery it concerns.
    """
    groups: dict[tuple, list] = {}
    for row in due:
        if row.recipient_kind == "contact" and row.sharer_id and row.student_id:
            key = (row.sharer_id, row.tenant_id, row.sharer_role, row.district_id, row.student_id)
            groups.setdefault(key, []).append(row)
    calls = {}
    for key, rows in groups.items():
        sharer, tenant, role, district, student = key
        auth = {"user_id": sharer, "tenant_id": tenant, "role": role, "district_id": district}
        ids = sorted({r.recipient_id for r in rows})
        for start in range(0, len(ids), 50):  # identity takes at most 50 ids a call
            calls[(key, start)] = (rows, identity.delivery_contacts.call_async(auth, student, ids[start:start + 50]))
    found = {}
    for rows, call in calls.values():
        try:
            with eventlet.Timeout(settings().rpc_timeout_seconds):
                answer = {str(c["id"]): c for c in call.result()}
        except (Exception, eventlet.Timeout):  # noqa: BLE001 - each delivery asks alone
            continue
        found.update({r.id: answer[r.recipient_id] for r in rows if r.recipient_id in answer})
    return found


DELIVERY, ATTEMPT, SHARE, REFERRAL = (m.__table__ for m in (Delivery, DeliveryAttempt, Share, Referral))


@dataclasses.dataclass(slots=True)
class Claimed:
    """A delivery this worker claimed, with what its message needs (its share and the
    share's referrals, in ``share``), read in the claim's transaction.

    Plain values rather than ORM objects: a chunk's bookkeeping is a few Core statements
    (the ORM's unit of work and identity map cost more than the statements themselves).
    ``attempt_id`` is the log row of this attempt, closed with the outcome.

    Example: Claimed(id="d-1", share_id="s-1", …, channel="email", language="es", attempts=1,
    attempt_id="a-1", share=namespace(note="Pregunte por Ana", referrals=[…], …))
    """

    id: str
    share_id: str
    referral_id: str | None
    purpose: str
    channel: str
    recipient_kind: str
    recipient_id: str | None
    transient_address: str | None
    language: str
    attempts: int
    attempt_id: str
    share: SimpleNamespace


INSERT_ATTEMPTS = insert(ATTEMPT).returning(ATTEMPT.c.id)

_CLAIMED = (DELIVERY.c.id, DELIVERY.c.share_id, DELIVERY.c.referral_id, DELIVERY.c.purpose, DELIVERY.c.channel,
            DELIVERY.c.recipient_kind, DELIVERY.c.recipient_id, DELIVERY.c.transient_address, DELIVERY.c.language,
            DELIVERY.c.attempts)


def claim_many(session, delivery_ids: list[str]) -> list[Claimed]:
    """Take the due deliveries of ``delivery_ids`` for this worker (those another took are left out),
    in the order given.

    One transaction of three statements: a conditional ``UPDATE … RETURNING`` (``queued``
    and due -> ``sending``, attempts + 1), one multi-row INSERT of the attempts' log rows,
    and one SELECT of the shares with their referrals (what the messages say).

    Example: claim_many(session, ["d-1", "d-2"]) -> [Claimed(id="d-2", attempts=1, …)] when
    another worker took d-1 first.
    """
    now = utcnow()
    connection = session.connection()
    rows = connection.execute(
        update(DELIVERY)
        .where(DELIVERY.c.id.in_(delivery_ids), DELIVERY.c.state == "queued", DELIVERY.c.next_attempt_at <= now)
        .values(state="sending", attempts=DELIVERY.c.attempts + 1, claimed_at=now)
        .returning(*_CLAIMED)
    ).all()
    if not rows:
        session.rollback()
        return []
    order = {delivery_id: i for i, delivery_id in enumerate(delivery_ids)}
    rows.sort(key=lambda row: order[row.id])
    attempts = [{"id": new_id(), "delivery_id": row.id, "number": row.attempts, "started_at": now,
                 "finished_at": None, "result": "sending", "reason": None} for row in rows]
    # RETURNING makes SQLAlchemy send the rows as one INSERT (its "insertmanyvalues"; a
    # plain DBAPI executemany is a round trip per row), from a statement it compiles
    # once, where a multi-row .values() would be compiled anew every time.
    connection.execute(INSERT_ATTEMPTS, attempts)
    shares = _shares(execute_then_commit(session, _shares_query({row.share_id for row in rows}))[0])
    return [Claimed(**row._mapping, attempt_id=attempt["id"], share=shares[row.share_id])
            for row, attempt in zip(rows, attempts)]


def _shares_query(share_ids):
    """The shares' facts, with their referrals in order (one row per referral)."""
    return (
        select(SHARE.c.id, SHARE.c.tenant_id, SHARE.c.district_id, SHARE.c.sharer_id, SHARE.c.sharer_role,
               SHARE.c.student_id, SHARE.c.note, REFERRAL.c.id.label("referral_id"), REFERRAL.c.service_info,
               REFERRAL.c.status, REFERRAL.c.last_update_at)
        .select_from(SHARE.outerjoin(REFERRAL, REFERRAL.c.share_id == SHARE.c.id))
        .where(SHARE.c.id.in_(sorted(share_ids)))
        .order_by(SHARE.c.id, REFERRAL.c.position)
    )


def _shares(rows) -> dict[str, SimpleNamespace]:
    """{share id: the share's facts with ``referrals`` (id, service_info, status, last_update_at) in order},
    from the rows of :func:`_shares_query`."""
    shares: dict[str, SimpleNamespace] = {}
    for row in rows:
        share = shares.get(row.id)
        if share is None:
            share = shares[row.id] = SimpleNamespace(
                id=row.id, tenant_id=row.tenant_id, district_id=row.district_id, sharer_id=row.sharer_id,
                sharer_role=row.sharer_role, student_id=row.student_id, note=row.note, referrals=[])
        if row.referral_id is not None:
            share.referrals.append(SimpleNamespace(id=row.referral_id, service_info=row.service_info,
                                                   status=row.status, last_update_at=row.last_update_at))
    return shares


def _deliver_chunk(make_session, identity, delivery_ids: list[str], contacts: dict) -> None:
    with make_session() as session:
        deliveries = claim_many(session, delivery_ids)
        if not deliveries:
            return
        # Everything read from the database was read by the claim: the sends below
        # (greenthreads for SMS) never touch the session.
        jobs, rendered = [], {}
        for delivery in deliveries:
            # A share to both parents in one language is rendered once.
            key = (delivery.share_id, delivery.referral_id, delivery.purpose, delivery.channel, delivery.language)
            if key not in rendered:
                try:
                    rendered[key] = _content(delivery)
                except Exception as exc:  # noqa: BLE001 - recorded below like any send failure
                    rendered[key] = exc
            jobs.append((delivery, rendered[key]))
        outcomes = _send_all(jobs, identity, contacts)
        record_outcomes(session, deliveries, outcomes)


def record_outcomes(session, deliveries: list[Claimed], outcomes: list[tuple[str, str]]) -> None:
    """Record each delivery's outcome (``_try_send``'s) and close its attempt, in one commit.

    ``sent`` -> sent with the provider's id; ``permanent``, or ``temporary`` on the last
    allowed attempt -> failed with the reason; ``temporary`` otherwise -> queued again
    with ``next_attempt_at`` pushed out (:func:`backoff`). The sent rows take one
    statement per table; failures (rare) one row each.

    A delivery deleted while it was sent (an opt-out, a termination) matches no row
    and is simply not recorded; the others are. The attempts are written before the
    deliveries, the order in which a deletion removes them (``erasure``), so the two
    wait for each other rather than deadlock.

    Example: record_outcomes(session, [d1, d2], [("sent", "<m1@weintervene.local>"),
    ("temporary", "421 try later")]) -> d1 sent; d2 queued again, due in ``backoff(1)``.
    """
    now = utcnow()
    max_attempts = settings().delivery_max_attempts
    sent, failed, requeued = {}, [], []
    attempt_failures = []
    for delivery, (result, value) in zip(deliveries, outcomes):
        DELIVERIES.labels(delivery.channel, "sent" if result == "sent" else "failed").inc()
        if result == "sent":
            sent[delivery.id] = (delivery.attempt_id, value)
            continue
        attempt_failures.append({"b_id": delivery.attempt_id, "b_reason": value})
        if result == "permanent":
            failed.append({"b_id": delivery.id, "b_error": value})
        elif delivery.attempts >= max_attempts:
            failed.append({"b_id": delivery.id, "b_error": f"gave up after {delivery.attempts} attempts: {value}"})
        else:
            requeued.append({"b_id": delivery.id, "b_error": value, "b_next": now + backoff(delivery.attempts)})
    connection = session.connection()
    if sent:
        connection.execute(
            update(ATTEMPT).where(ATTEMPT.c.id.in_([attempt for attempt, _ in sent.values()]))
            .values(result="sent", reason=None, finished_at=now))
    if attempt_failures:
        connection.execute(
            update(ATTEMPT).where(ATTEMPT.c.id == bindparam("b_id"))
            .values(result="failed", reason=bindparam("b_reason"), finished_at=now), attempt_failures)
    if failed:
        connection.execute(
            update(DELIVERY).where(DELIVERY.c.id == bindparam("b_id"))
            .values(state="failed", last_error=bindparam("b_error"), transient_address=None), failed)
    if requeued:
        connection.execute(
            update(DELIVERY).where(DELIVERY.c.id == bindparam("b_id"))
            .values(state="queued", last_error=bindparam("b_error"), next_attempt_at=bindparam("b_next")), requeued)
    if not sent:
        session.commit()
        return
    # Last, so that the commit goes with it: a walk-in family's typed address is kept
    # only while it is needed.
    _, recorded = execute_then_commit(
        session,
        update(DELIVERY).where(DELIVERY.c.id.in_(list(sent)))
        .values(state="sent", last_error=None, transient_address=None, sent_at=now,
                provider_message_id=case({d: provider_id for d, (_, provider_id) in sent.items()},
                                         value=DELIVERY.c.id)))
    if recorded < len(sent):
        log.info("%d sent deliveries were deleted while they were sent; nothing to record", len(sent) - recorded)


def _send_all(jobs: list, identity, contacts: dict) -> list[tuple[str, str]]:
    """The outcome of each ``(delivery, content)`` job, in order.

    SMS requests run in parallel (one HTTP request each). Emails go on one SMTP
    connection per ``EMAILS_PER_CONNECTION`` of them, one message after another on
    each, the connections side by side and alongside the SMS requests.
    """
    pool = eventlet.GreenPool(max(len(jobs), 1))
    texts = {i: pool.spawn(_try_send, delivery, identity, contacts.get(delivery.id), content)
             for i, (delivery, content) in enumerate(jobs) if delivery.channel != "email"}
    emails = [i for i, (delivery, _) in enumerate(jobs) if delivery.channel == "email"]
    connections = max(math.ceil(len(emails) / EMAILS_PER_CONNECTION), 1)
    size = max(math.ceil(len(emails) / connections), 1)  # as even as can be: 10 -> 5 + 5, 11 -> 4 + 4 + 3
    lanes = [emails[start:start + size] for start in range(0, len(emails), size)]
    outcomes = {}

    def send_lane(lane: list[int]) -> None:
        with MailConnection(keep_open=True) as connection:  # the next chunk takes the session on
            for i in lane:
                delivery, content = jobs[i]
                outcomes[i] = _try_send(delivery, identity, contacts.get(delivery.id), content, connection)

    others = [pool.spawn(send_lane, lane) for lane in lanes[1:]]
    if lanes:
        send_lane(lanes[0])
    for lane in others:
        lane.wait()
    outcomes.update({i: thread.wait() for i, thread in texts.items()})
    return [outcomes[i] for i in range(len(jobs))]


def _try_send(delivery: Claimed, identity, contact: dict | None, content,
              connection: MailConnection | None = None) -> tuple[str, str]:
    """("sent", provider id) or ("permanent" | "temporary", reason); never raises."""
    try:
        if isinstance(content, Exception):
            raise content
        return "sent", send(delivery, identity, contact, content, connection)
    except PermanentFailure as exc:
        return "permanent", str(exc)
    except TemporaryFailure as exc:
        return "temporary", str(exc)
    except Exception as exc:  # noqa: BLE001 - an unexpected bug must not leave the row "sending" forever
        log.exception("delivery %s failed unexpectedly", delivery.id)
        return "temporary", f"internal error: {type(exc).__name__}"


def _finish(delivery: Delivery, state: str, reason: str | None) -> None:
    delivery.state = state
    delivery.last_error = reason
    # A walk-in family's typed address is kept only while it is needed.
    delivery.transient_address = None


def sharer_auth(share) -> dict:
    """The sharer's context, so identity re-checks access as of now, not as of the share."""
    if share.sharer_id is None:
        raise PermanentFailure("the sharer's account was removed")
    return {"user_id": share.sharer_id, "tenant_id": share.tenant_id, "role": share.sharer_role,
            "district_id": share.district_id}


def _address(delivery: Claimed, identity, contact: dict | None = None) -> str:
    """The address to send to; ``contact`` is identity's answer when the batch already asked it."""
    share = delivery.share
    field = "email" if delivery.channel == "email" else "mobile"
    if delivery.recipient_kind == "walk_in":
        if not delivery.transient_address:
            raise PermanentFailure("no address")
        return delivery.transient_address
    if contact is not None and delivery.recipient_kind == "contact" and str(contact.get("id")) == delivery.recipient_id:
        address = contact.get(field) if contact.get("authorised") else None
        if not address:
            raise PermanentFailure(f"recipient has no {field}")
        return address
    try:
        # A bounded wait: a timer worker stuck on a silent identity would also hold
        # up this service's shutdown.
        with eventlet.Timeout(settings().rpc_timeout_seconds):
            if delivery.recipient_kind == "sharer":
                address = identity.user_info(delivery.recipient_id).get("email")
            else:
                contacts = identity.delivery_contacts(sharer_auth(share), share.student_id, [delivery.recipient_id])
                address = contacts[0].get(field) if contacts and contacts[0].get("authorised") else None
    except eventlet.Timeout:
        raise TemporaryFailure("identity did not answer in time") from None
    except (Forbidden, NotFound, Conflict) as exc:
        raise PermanentFailure(f"recipient no longer reachable: {exc.code}") from None
    except WeInterveneError as exc:
        raise TemporaryFailure(f"identity: {exc.code}") from None
    except Exception as exc:  # identity down or slow: try again later
        raise TemporaryFailure(f"identity unavailable: {type(exc).__name__}") from None
    if not address:
        raise PermanentFailure(f"recipient has no {field}")
    return address


def _content(delivery: Claimed) -> dict:
    share = delivery.share
    if delivery.purpose == "reminder":
        referral = next(r for r in share.referrals if r.id == delivery.referral_id)
        days = (utcnow() - referral.last_update_at).days
        url = f"{settings().public_base_url.rstrip('/')}/referrals/{referral.id}"
        subject, text = render_reminder(delivery.language, referral.service_info["name"], days, referral.status, url)
        return {"subject": subject, "text": text, "html": None, "sms": text}
    services = [r.service_info for r in share.referrals]
    return render_share(delivery.language, services, note=share.note, channel=delivery.channel)


def send(delivery: Claimed, identity, contact: dict | None = None, content: dict | None = None,
         connection: MailConnection | None = None) -> str:
    """Send one delivery now (an email on ``connection`` when given); returns the provider's id.
    Raises Permanent/TemporaryFailure."""
    address = _address(delivery, identity, contact)
    content = content or _content(delivery)
    if delivery.channel == "email":
        try:
            return send_email(address, content["subject"], content["text"], content["html"],
                              headers={"X-WeIntervene-Delivery": delivery.id,
                                       "Content-Language": delivery.language},
                              connection=connection)
        except MailRefused as exc:
            raise PermanentFailure(exc.message) from None
        except MailUnavailable as exc:
            raise TemporaryFailure(exc.message) from None
    try:
        return send_sms(address, content["sms"], idempotency_key=delivery.id)
    except SmsError as exc:
        raise (PermanentFailure if exc.permanent else TemporaryFailure)(exc.reason) from None


def queue_reminders(session) -> int:
    """Stage a reminder email to the sharer of each open referral past its follow-up date."""
    from services.referrals.models import CLOSED_STATUSES

    today = utcnow().date()
    due = session.scalars(
        select(Referral).join(Share)
        .where(
            Referral.status.not_in(CLOSED_STATUSES),
            Referral.follow_up_on.is_not(None),
            Referral.follow_up_on <= today,
            Share.sharer_id.is_not(None),
            (Referral.reminded_at.is_(None)) | (Referral.reminded_at < Referral.last_update_at),
        )
        .limit(500)
    ).all()
    now = utcnow()
    for referral in due:
        referral.reminded_at = now
        session.add(Delivery(
            share_id=referral.share_id, referral_id=referral.id, purpose="reminder", channel="email",
            recipient_kind="sharer", recipient_id=referral.share.sharer_id, language="en",
            next_attempt_at=now, created_at=now,
        ))
    session.commit()
    return len(due)


# What the provider's status callback says, and what it makes of a sent delivery.
PROVIDER_OUTCOMES = {"delivered": "delivered", "undelivered": "failed", "failed": "failed"}


def apply_provider_status(session, params: dict, commit: bool = True) -> bool:
    """Record the provider's final word on a sent SMS; True when a delivery changed.

    Intermediate reports (queued, sending, sent) and unknown message ids change
    nothing; a message the provider could not deliver becomes ``failed`` with its
    reason and is not resent (the family may have received part of it). With
    ``commit=False`` the caller commits (sms_callbacks records the callback as seen
    in the same transaction).
    """
    outcome = PROVIDER_OUTCOMES.get(str(params.get("MessageStatus", "")).lower())
    sid = params.get("MessageSid")
    if outcome is None or not sid:
        return False
    # channel = 'sms': the predicate of the index that finds it (ix_delivery_sms_provider_message_id).
    delivery = session.scalar(select(Delivery)
                              .where(Delivery.channel == "sms", Delivery.provider_message_id == str(sid))
                              .execution_options(populate_existing=True))
    if delivery is None or delivery.state != "sent":
        return False
    delivery.state = outcome
    if outcome == "failed":
        delivery.last_error = f"provider reported {params['MessageStatus']} (error {params.get('ErrorCode') or 'none'})"
    DELIVERIES.labels(delivery.channel, outcome).inc()
    if commit:
        session.commit()
    return True
