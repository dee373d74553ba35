"""Webhooks: registering URLs, recording events as deliveries, and sending them.

Sending happens only in the Celery task `annotation.tasks.webhook_deliver`, never in a web
request. Each delivery is POSTed as JSON and signed: `X-SynthLab-Signature-256: sha256=<hex>` is the
HMAC-SHA256 of the raw body with the hook's secret (compare it with `hmac.compare_digest`). A
failed delivery (network error or a non-2xx answer) is retried with exponential backoff up to
`SYNTHLAB_WEBHOOK_MAX_ATTEMPTS`; every attempt's outcome is kept on the delivery row.

SSRF guard: a URL whose host resolves to a private, loopback, link-local or otherwise non-public
address is refused, when registered and again before each send, unless
`SYNTHLAB_WEBHOOKS_ALLOW_PRIVATE` is on. Redirects are not followed.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from synthlab.errors import ValidationFailed

from ..models import DeliveryStatus, Project, Webhook, WebhookDelivery, WebhookEvent

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-SynthLab-Signature-256"
RESPONSE_BODY_KEEP = 2000


def webhook_sign(*, secret: str, body: bytes) -> str:
    """The signature header value for `body`: "sha256=" and the hex HMAC-SHA256."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def webhook_signature_valid(*, secret: str, body: bytes, header: str) -> bool:
    """What a receiver does: recompute the signature and compare in constant time."""
    return hmac.compare_digest(webhook_sign(secret=secret, body=body), header or "")


def _address_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def webhook_url_check(*, url: str) -> str:
    """The URL if it may receive deliveries; ValidationFailed saying why not otherwise."""

    def refuse(message: str):
        raise ValidationFailed(message, details=[{"field": "url", "message": message}])

    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        refuse("Give a full http:// or https:// URL, e.g. https://example.com/hooks/synthlab.")
    if len(url) > 2000:
        refuse("Keep the URL under 2000 characters.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        refuse("The URL's port is not a number from 1 to 65535.")
    if settings.SYNTHLAB_WEBHOOKS_ALLOW_PRIVATE:
        return url
    try:
        infos = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        refuse(f"The host {parts.hostname!r} does not resolve; check the spelling.")
    addresses = sorted({info[4][0] for info in infos})
    private = [a for a in addresses if not _address_public(a)]
    if private:
        refuse(
            f"{parts.hostname} resolves to a private or loopback address ({private[0]}); webhooks may "
            "only call public addresses. An admin can allow private ones with "
            "SYNTHLAB_WEBHOOKS_ALLOW_PRIVATE=1."
        )
    return url


def _events_clean(events) -> list[str]:
    if isinstance(events, str):
        events = [events]
    if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
        raise ValidationFailed(
            f"Choose one or more events: {', '.join(WebhookEvent.values)}.",
            details=[{"field": "events", "message": "A non-empty list of event names."}],
        )
    unknown = [e for e in events if e not in WebhookEvent.values]
    if unknown:
        raise ValidationFailed(
            f"Unknown event {unknown[0]!r}; choose from: {', '.join(WebhookEvent.values)}.",
            details=[{"field": "events", "message": f"Unknown event {unknown[0]!r}."}],
        )
    return list(dict.fromkeys(events))


def webhook_create(*, project: Project, url: str, events, secret: str = "", user=None) -> Webhook:
    """Registers a hook. An empty secret gets a random one (shown once, in the creating response)."""
    url = webhook_url_check(url=url)
    events = _events_clean(events)
    secret = (secret or "").strip() or secrets.token_urlsafe(32)
    if len(secret) < 16 or len(secret) > 200:
        raise ValidationFailed(
            "Use a secret of 16 to 200 characters, or leave it empty to get a random one.",
            details=[{"field": "secret", "message": "16 to 200 characters."}],
        )
    return Webhook.objects.create(project=project, url=url, events=events, secret=secret, created_by=user)


def webhook_update(*, webhook: Webhook, active: bool | None = None, events=None) -> Webhook:
    if active is not None:
        webhook.active = bool(active)
    if events is not None:
        webhook.events = _events_clean(events)
    webhook.save(update_fields=["active", "events"])
    return webhook


def webhook_delete(*, webhook: Webhook) -> None:
    webhook.delete()


def _enqueue(delivery_ids: list[int], countdown: float = 0) -> None:
    from ..tasks import webhook_deliver

    for delivery_id in delivery_ids:
        try:
            webhook_deliver.apply_async((delivery_id,), countdown=countdown)
        except Exception as exc:  # broker unreachable: say so on the delivery, do not break the caller
            logger.exception("could not queue webhook delivery %s", delivery_id)
            WebhookDelivery.objects.filter(pk=delivery_id).update(
                error=f"Could not queue the delivery (is the broker running?): {exc}"
            )


def webhook_event_emit(*, project: Project | int, event: str, data: dict) -> list[WebhookDelivery]:
    """Records one delivery per active hook of the project listening to `event`, and queues them
    to be sent after the current transaction commits. Cheap when the project has no hooks."""
    if event not in WebhookEvent.values:
        raise ValueError(f"unknown webhook event {event!r}")
    project_id = project if isinstance(project, int) else project.pk
    if not _active_hooks_exist(project_id):
        return []
    hooks = [h for h in Webhook.objects.filter(project_id=project_id, active=True) if event in h.events]
    if not hooks:
        return []
    deliveries = WebhookDelivery.objects.bulk_create(
        [WebhookDelivery(webhook=h, event=event, payload=data) for h in hooks]
    )
    ids = [d.pk for d in deliveries]
    transaction.on_commit(lambda: _enqueue(ids))
    return deliveries


def _active_hooks_exist(project_id: int) -> bool:
    """Whether the project has an active hook, in a hand-written statement: this runs on every
    submit, and most projects have no hooks."""
    from django.db import connection

    table = connection.ops.quote_name(Webhook._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {table} WHERE project_id = %s AND active = %s LIMIT 1", [project_id, True]
        )
        return cursor.fetchone() is not None


def webhook_delivery_resend(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Sends a delivery's event again, as a new delivery (the old one stays in the log)."""
    fresh = WebhookDelivery.objects.create(
        webhook=delivery.webhook, event=delivery.event, payload=delivery.payload
    )
    transaction.on_commit(lambda: _enqueue([fresh.pk]))
    return fresh


def _body(delivery: WebhookDelivery) -> bytes:
    envelope = {
        "event": delivery.event,
        "delivery": delivery.pk,
        "project": delivery.webhook.project_id,
        "created_at": delivery.created_at.isoformat(),
        "data": delivery.payload,
    }
    return json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode("utf-8")


def retry_delay(attempts: int) -> float:
    """Seconds before the next attempt after `attempts` failed ones: base * 2^(attempts-1)."""
    return settings.SYNTHLAB_WEBHOOK_RETRY_BASE_SECONDS * (2 ** max(attempts - 1, 0))


def webhook_delivery_attempt(*, delivery_id: int) -> WebhookDelivery | None:
    """Sends one attempt of a delivery and records the outcome. Answers the delivery, or None when
    there was nothing to do (already delivered or given up, or another worker took this attempt).

    The claim is a conditional UPDATE on `attempts`, so two workers running the same message send
    once; no lock is held during the HTTP call.
    """
    delivery = WebhookDelivery.objects.select_related("webhook").filter(pk=delivery_id).first()
    if delivery is None or delivery.status not in (DeliveryStatus.PENDING, DeliveryStatus.RETRYING):
        return None
    if delivery.next_attempt_at and delivery.next_attempt_at > timezone.now() + timedelta(seconds=1):
        return None  # a stale duplicate of a message scheduled for later
    claimed = WebhookDelivery.objects.filter(
        pk=delivery.pk,
        attempts=delivery.attempts,
        status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING],
    ).update(attempts=F("attempts") + 1, next_attempt_at=None)
    if not claimed:
        return None
    delivery.attempts += 1
    hook = delivery.webhook
    body = _body(delivery)
    response_status, response_body, error = None, "", ""
    retryable = True
    try:
        webhook_url_check(url=hook.url)
    except ValidationFailed as exc:
        error, retryable = exc.message, False
    else:
        import httpx  # here, not at the top: every event emit (each submit, each export) imports this module

        try:
            response = httpx.post(
                hook.url,
                content=body,
                headers={
                    "Content-Type": "application/json",
                    "User-Agent": "SynthLab-Webhooks/1",
                    "X-SynthLab-Event": delivery.event,
                    "X-SynthLab-Delivery": str(delivery.pk),
                    SIGNATURE_HEADER: webhook_sign(secret=hook.secret, body=body),
                },
                timeout=settings.SYNTHLAB_WEBHOOK_TIMEOUT_SECONDS,
                follow_redirects=False,
            )
            response_status = response.status_code
            response_body = response.text[:RESPONSE_BODY_KEEP]
            if not 200 <= response.status_code < 300:
                error = f"The receiver answered HTTP {response.status_code}."
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:1000]

    now = timezone.now()
    delivery.response_status, delivery.response_body, delivery.error = response_status, response_body, error
    if not error:
        delivery.status, delivery.delivered_at = DeliveryStatus.SUCCEEDED, now
    elif retryable and delivery.attempts < settings.SYNTHLAB_WEBHOOK_MAX_ATTEMPTS:
        delivery.status = DeliveryStatus.RETRYING
        delivery.next_attempt_at = now + timedelta(seconds=retry_delay(delivery.attempts))
    else:
        delivery.status = DeliveryStatus.FAILED
    delivery.save(
        update_fields=[
            "status",
            "response_status",
            "response_body",
            "error",
            "next_attempt_at",
            "delivered_at",
        ]
    )
    return delivery
