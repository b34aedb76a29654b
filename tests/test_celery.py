import pytest
from django.conf import settings

from config.celery import app
from portal.tasks import ping
from sync.tasks import OutboxTask, SyncTask
from tests import factories


def test_sync_and_outbox_work_is_at_least_once():
    conf = app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert {q.name for q in conf.task_queues} == {"sync", "outbox", "webhooks", "default"}
    limits = [conf.task_time_limit, SyncTask.time_limit, OutboxTask.time_limit]
    assert max(limits) < conf.broker_transport_options.get(
        "visibility_timeout", settings.CELERY_VISIBILITY_TIMEOUT
    )
    for base in (SyncTask, OutboxTask):
        assert base.acks_late and base.reject_on_worker_lost
        assert base.soft_time_limit < base.time_limit


@pytest.mark.parametrize(
    ("task_name", "queue"),
    [
        ("sync.sync_connection", "sync"),
        ("sync.outbox_relay", "outbox"),
        ("sync.process_webhook_event", "webhooks"),
        ("portal.ping", "default"),
    ],
)
def test_tasks_are_routed_to_named_queues(task_name, queue):
    route = app.amqp.router.route({}, task_name)
    assert route["queue"].name == queue
    # Its own exchange and key: a message published for one queue never lands in another.
    assert route["queue"].routing_key == queue
    assert route["queue"].exchange.name == queue


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_round_trip_through_a_real_worker_on_redis(celery_worker_queue):
    from config.logging import request_id_var

    factories.CompanyFactory.create_batch(3)
    token = request_id_var.set("req-from-the-web-1234")
    try:
        result = ping.apply_async(args=[{"hello": "worker"}], queue=celery_worker_queue)
    finally:
        request_id_var.reset(token)
    reply = result.get(timeout=30)
    assert reply["request_id"] == "req-from-the-web-1234"  # the correlation id travelled
    assert reply["echo"] == {"hello": "worker"}
    assert reply["companies"] == 3  # the worker read the same PostgreSQL database
    assert result.status == "SUCCESS"
