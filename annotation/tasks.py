"""Celery tasks of the annotation app: thin, take ids, safe to run twice."""

from celery import shared_task

from .models import DeliveryStatus
from .services import webhooks


@shared_task(acks_late=True, ignore_result=True)
def webhook_deliver(delivery_id: int) -> None:
    """One attempt at a webhook delivery; a failed attempt queues the next one with backoff."""
    delivery = webhooks.webhook_delivery_attempt(delivery_id=delivery_id)
    if delivery is not None and delivery.status == DeliveryStatus.RETRYING:
        webhook_deliver.apply_async((delivery_id,), countdown=webhooks.retry_delay(delivery.attempts))


@shared_task(acks_late=True, ignore_result=True)
def export_run_task(export_id: int) -> None:
    """Writes one export's file. A rerun (redelivery after a crash) is a no-op unless the first
    run stopped beating; see exports.export_run."""
    from .services import exports

    exports.export_run(export_id=export_id)
