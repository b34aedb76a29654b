from celery import shared_task

from quotes.services import quote_decision_notify


@shared_task(
    name="quotes.notify_decision",
    acks_late=True,
    autoretry_for=(Exception,),
    retry_backoff=60,
    retry_backoff_max=3600,
    max_retries=5,
)
def notify_decision(decision_id: int) -> int:
    return quote_decision_notify(decision_id=decision_id)
