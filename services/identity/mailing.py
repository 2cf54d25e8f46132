"""Identity's mail, sent after answering: password resets, invitations, access notices.

A request never looks anything up for its mail nor talks to the SMTP server: it stages
a :class:`MailJob` row in its own transaction and answers. So a password reset for an
address with an account and for one without do the same work (one INSERT, one COMMIT)
and answer in the same time; an invitation answers without waiting for the mail server.

The mail worker (:class:`MailTrigger`, woken by the commit that staged a job, like the
outbox relay, and every two seconds for retries) takes due jobs one at a time
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several identity processes share the
work), resolves them (who has that address? is the link still wanted?), sends, and
deletes the job. A mail server that is down (``MailUnavailable``) puts the job back
with a growing delay (``RETRY_DELAYS``), for about a day; a permanent refusal or the
last try drops it. Nothing personal outlives the sending: the job is deleted, and a
reset job's typed address is the only copy of it.

Example::

    >>> stage_reset(db, "Rivera@Lincoln.example"); db.commit()     # the request's work
    >>> deliver_due(db)                                             # the worker's
    RelayResult(sent=1, failed=0, full=False, errors=[])
"""
from __future__ import annotations

import logging
from datetime import timedelta
from html import escape

from sqlalchemy import case, func, select

from services.identity.models import AccessLogEntry, MailJob, PasswordReset, User
from weintervene import mail
from weintervene.config import settings
from weintervene.db import utcnow
from weintervene.messaging import RelayResult, RelayTrigger, wake_after_commit

log = logging.getLogger(__name__)

PASSWORD_RESET = "password_reset"
INVITATION = "invitation"
ACCESS_NOTICE = "access_notice"

# Seconds before the n-th retry (the last repeats): about a day in all, then given up.
RETRY_DELAYS = (5, 30, 120, 600, 1800, 3600)
MAX_ATTEMPTS = 30
INVITE_TTL_SECONDS = 7 * 24 * 3600
# At most this many reset links alive per account: the reset form cannot flood an inbox.
MAX_LIVE_RESETS = 3


class MailTrigger(RelayTrigger):
    """The outbox relay's trigger, for identity's mail jobs: runs the worker when a
    commit staged a job (at once: no linger), every ``idle_seconds`` otherwise (jobs
    waiting for a retry), backing off while the mail server is down."""

    def setup(self):
        super().setup()
        self.model = MailJob
        self.linger_seconds = 0.0


mail_trigger = MailTrigger.decorator


# -- staging (in the request's transaction) --------------------------------------

def _stage(db, **values) -> MailJob:
    job = MailJob(next_try_at=utcnow(), attempts=0, **values)
    db.add(job)
    wake_after_commit(db, MailJob)
    return job


def stage_reset(db, email: str) -> MailJob:
    """A reset link for whoever has ``email``: the same row whether or not anyone has."""
    return _stage(db, kind=PASSWORD_RESET, email=(email or "").strip().lower()[:254])


def stage_invitation(db, user: User) -> MailJob:
    """The invitation of a new user (the link is made when it is sent)."""
    return _stage(db, kind=INVITATION, user_id=user.id, tenant_id=user.tenant_id)


def stage_access_notice(db, entry: AccessLogEntry, recipient: User) -> MailJob:
    """Tell one of the tenant's administrators what a platform account did."""
    return _stage(db, kind=ACCESS_NOTICE, user_id=recipient.id, tenant_id=entry.tenant_id, entry_id=entry.id)


# -- the worker -------------------------------------------------------------------

def deliver_due(db, limit: int = 50) -> RelayResult:
    """Send up to ``limit`` due jobs, one transaction each; what the trigger reports on.

    Example: deliver_due(db) -> RelayResult(sent=2, failed=0, full=False)
    """
    result = RelayResult()
    for _ in range(limit):
        # Someone is waiting for a reset link or an invitation; an access notice can wait
        # behind them (a burst of operator actions stages one per administrator).
        query = (select(MailJob).where(MailJob.next_try_at <= utcnow())
                 .order_by(case((MailJob.kind == ACCESS_NOTICE, 1), else_=0), MailJob.next_try_at).limit(1))
        if db.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        job = db.scalar(query)
        if job is None:
            db.rollback()
            return result
        try:
            sent = _deliver(db, job)
        except mail.MailRefused as exc:
            db.rollback()
            log.warning("mail job %s (%s) refused for good: %s", job.id, job.kind, exc)
            _forget(db, job.id)
            continue
        except mail.MailUnavailable as exc:
            db.rollback()
            _retry_later(db, job.id, str(exc))
            result.failed += 1
            result.errors.append(str(exc))
            return result  # the server is down: the trigger backs off
        db.delete(job)
        db.commit()
        result.sent += int(sent)
    result.full = True
    return result


def _forget(db, job_id: str) -> None:
    job = db.get(MailJob, job_id)
    if job is not None:
        db.delete(job)
    db.commit()


def _retry_later(db, job_id: str, error: str) -> None:
    job = db.get(MailJob, job_id)
    if job is None:
        db.commit()
        return
    job.attempts += 1
    if job.attempts >= MAX_ATTEMPTS:
        log.error("mail job %s (%s) given up after %d attempts: %s", job.id, job.kind, job.attempts, error)
        db.delete(job)
    else:
        delay = RETRY_DELAYS[min(job.attempts - 1, len(RETRY_DELAYS) - 1)]
        job.next_try_at = utcnow() + timedelta(seconds=delay)
        job.last_error = error[:500]
        log.warning("mail job %s (%s) not sent (%s); next try in %ss", job.id, job.kind, error, delay)
    db.commit()


def _deliver(db, job: MailJob) -> bool:
    """Resolve and send ``job`` (raises mail errors); False when there is nothing to send."""
    if job.kind == PASSWORD_RESET:
        return _send_reset(db, job.email)
    user = db.get(User, job.user_id) if job.user_id else None
    if user is None or not user.is_active:
        return False
    if job.kind == INVITATION:
        if user.password_hash is not None or user.tenant.status != "active":
            return False  # they chose a password meanwhile (another link, a reset)
        from services.identity import accounts, tenants  # late: both import this module

        tenants.send_invitation(user, accounts.issue_reset(db, user, ttl_seconds=INVITE_TTL_SECONDS))
        return True
    if job.kind == ACCESS_NOTICE:
        # Even to a tenant being terminated: that is the notice it most needs.
        entry = db.get(AccessLogEntry, job.entry_id) if job.entry_id else None
        if entry is None:
            return False
        send_access_notice(user, entry)
        return True
    log.error("mail job %s of unknown kind %s dropped", job.id, job.kind)
    return False


def _send_reset(db, email: str | None) -> bool:
    from services.identity import accounts  # late: accounts imports this module

    user = db.scalar(select(User).where(User.email == (email or "")))
    if user is None or not user.is_active or user.tenant.status != "active":
        return False
    live = db.scalar(select(func.count()).select_from(PasswordReset).where(
        PasswordReset.user_id == user.id, PasswordReset.expires_at > utcnow()))
    if live >= MAX_LIVE_RESETS:
        log.warning("password reset for user %s not sent: %d links already issued recently", user.id, live)
        return False
    token = accounts.issue_reset(db, user)
    minutes = settings().password_reset_ttl_seconds // 60
    link = accounts.reset_link(token)
    text = (
        f"Hello {user.display_name},\n\n"
        f"Someone asked to reset the password of your WeIntervene account.\n"
        f"To choose a new password, open this link within {minutes} minutes:\n\n{link}\n\n"
        "It works once. If you did not ask for this, ignore this message: your password stays as it is.\n"
    )
    html = (
        f"<p>Hello {escape(user.display_name)},</p>"
        f"<p>Someone asked to reset the password of your WeIntervene account. "
        f"To choose a new password, open this link within {minutes} minutes:</p>"
        f'<p><a href="{escape(link)}">{escape(link)}</a></p>'
        "<p>It works once. If you did not ask for this, ignore this message.</p>"
    )
    # Sent before the commit: a link that never left is never valid.
    mail.send(user.email, "Reset your WeIntervene password", text, html)
    return True


def send_access_notice(recipient: User, entry: AccessLogEntry) -> None:
    """The administrator's email about one access-log entry (what, who, when; no student data)."""
    tenant = recipient.tenant.name if recipient.tenant_id == entry.tenant_id else "a school of your district"
    page = f"{settings().public_base_url.rstrip('/')}/admin/access-log"
    when = entry.occurred_at.strftime("%Y-%m-%d %H:%M UTC")
    text = (
        f"Hello {recipient.display_name},\n\n"
        f"A WeIntervene platform account acted on {tenant}:\n\n"
        f"  {entry.description}\n"
        f"  by {entry.actor_name} ({entry.actor_role}), {when}\n\n"
        f"Every such action is listed in your access log: {page}\n"
    )
    html = (
        f"<p>Hello {escape(recipient.display_name)},</p>"
        f"<p>A WeIntervene platform account acted on {escape(tenant)}:</p>"
        f"<p><strong>{escape(entry.description)}</strong><br>by {escape(entry.actor_name)} "
        f"({escape(entry.actor_role)}), {escape(when)}</p>"
        f'<p>Every such action is listed in your <a href="{escape(page)}">access log</a>.</p>'
    )
    mail.send(recipient.email, "WeIntervene access notice: a platform account acted on your data", text, html)


def send_pending_notices(db, user_ids: list[str], tenant_ids: list[str]) -> int:
    """Send now the access notices waiting for these users or about these tenants (they are
    about to be deleted: a termination; a district admin's notice about a terminated school
    goes too); a failure is logged, never stops the deletion. The caller's deletion then
    removes the jobs. Returns how many were sent."""
    from sqlalchemy import or_

    conditions = [MailJob.user_id.in_(list(user_ids))] if user_ids else []
    if tenant_ids:
        conditions.append(MailJob.tenant_id.in_(list(tenant_ids)))
    if not conditions:
        return 0
    sent = 0
    for job in db.scalars(select(MailJob).where(MailJob.kind == ACCESS_NOTICE, or_(*conditions))).all():
        try:
            sent += int(_deliver(db, job))
        except mail.MailUnavailable as exc:
            log.error("access notice %s not sent before the deletion of its tenant: %s", job.id, exc)
    return sent


def forget_jobs(db, *, user_ids=(), emails=(), tenant_ids=()) -> int:
    """Delete the jobs naming these users, addresses or tenants (a deletion); how many."""
    from sqlalchemy import delete, or_

    conditions = []
    if user_ids:
        conditions.append(MailJob.user_id.in_(list(user_ids)))
    if emails:
        conditions.append(MailJob.email.in_(list(emails)))
    if tenant_ids:
        conditions.append(MailJob.tenant_id.in_(list(tenant_ids)))
    if not conditions:
        return 0
    return max(db.execute(delete(MailJob).where(or_(*conditions))).rowcount or 0, 0)
