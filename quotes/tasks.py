from celery import shared_task

from quotes.services import quote_decision_notify


@shared_task(name="quotes.notify_decision", acks_late=True, max_retries=5, default_retry_delay=60)
def notify_decision(decision_id: int) -> int:
    return quote_decision_notify(decision_id=decision_id)
