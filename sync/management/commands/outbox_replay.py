"""Replay dead outbox events: give them a fresh set of attempts and deliver them."""

from django.core.management.base import BaseCommand

from sync.models import OutboxEvent
from sync.outbox import outbox_dead_replay, outbox_relay


class Command(BaseCommand):
    help = "Replay dead outbox events (all, or those given by id) and deliver them now."

    def add_arguments(self, parser):
        parser.add_argument("ids", nargs="*", type=int, help="Event ids (default: every dead one)")
        parser.add_argument(
            "--queue", action="store_true", help="Leave delivery to the workers instead"
        )

    def handle(self, *args, ids: list[int], queue: bool, **options):
        dead = OutboxEvent.objects.filter(status=OutboxEvent.Status.DEAD)
        if ids:
            missing = set(ids) - set(dead.filter(pk__in=ids).values_list("pk", flat=True))
            if missing:
                self.stderr.write(f"Not dead (or not found), skipped: {sorted(missing)}")
        count = outbox_dead_replay(event_ids=ids or None)
        self.stdout.write(f"Replayed {count} dead event(s).")
        if count and not queue:
            delivered = outbox_relay()
            states = OutboxEvent.objects.filter(pk__in=ids) if ids else None
            self.stdout.write(f"Delivered {delivered} event(s).")
            if states is not None:
                for event in states:
                    self.stdout.write(f"  event {event.pk}: {event.status} {event.last_error}")
