"""`make run`'s first sync: wait for the provider sandbox, sync the demo company's
integrations in full, and give the demo client user a real synced client with open quotes."""

import time

import requests
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Q

from integrations.models import Integration
from portal.models import Client, ClientMembership, User
from quotes.models import Quote
from sync.engine import sync_integration

DEMO_COMPANY = "demo-plumbing"
DEMO_CLIENT_USER = "client@demo.fieldbridge.test"


class Command(BaseCommand):
    help = "Sync the demo company's integrations from the sandbox and link the demo client user."

    def add_arguments(self, parser):
        parser.add_argument("--wait-for", default="", help="Sandbox root URL to wait for")
        parser.add_argument("--timeout", type=float, default=60.0)

    def handle(self, *args, wait_for: str, timeout: float, **options):
        if wait_for:
            self._wait(wait_for, timeout)
        integrations = Integration.objects.filter(company__slug=DEMO_COMPANY, enabled=True)
        if not integrations:
            raise CommandError("No demo integrations: run `manage.py seed_demo` first.")
        for integration in integrations:
            runs = sync_integration(integration_id=integration.pk, mode="full")
            summary = ", ".join(
                f"{r.entity} {r.status}"
                for r in (run.__class__.objects.get(pk=run.pk) for run in runs)
            )
            self.stdout.write(f"{integration}: {summary}")
        self._link_client_user()

    def _wait(self, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                requests.get(f"{url.rstrip('/')}/_sandbox/stats", timeout=2).raise_for_status()
                return
            except requests.RequestException:
                time.sleep(0.5)
        raise CommandError(f"The provider sandbox at {url} did not answer within {timeout} s.")

    def _link_client_user(self) -> None:
        """Give the demo client user, for each demo integration (ServiceM8 and ServiceTitan),
        the synced client with the most quotes awaiting a decision, so the portal shows quotes
        from both providers."""
        user = User.objects.filter(email__iexact=DEMO_CLIENT_USER).first()
        if user is None:
            return
        awaiting = Q(quotes__status=Quote.Status.SENT, quotes__remote_deleted_at__isnull=True)
        linked = []
        for integration in Integration.objects.filter(company__slug=DEMO_COMPANY, enabled=True):
            best = (
                Client.objects.filter(integration=integration, remote_deleted_at__isnull=True)
                .exclude(external_id="demo-client-0001")
                .annotate(open_quotes=Count("quotes", filter=awaiting, distinct=True))
                .filter(open_quotes__gt=0)
                .order_by("-open_quotes", "name")
                .first()
            )
            if best is None:
                continue
            ClientMembership.objects.get_or_create(user=user, client=best)
            linked.append(
                f"{best.name} ({integration.get_provider_display()}, "
                f"{best.open_quotes} quotes awaiting a decision)"
            )
        if linked:
            ClientMembership.objects.filter(
                user=user, client__external_id="demo-client-0001"
            ).delete()
            self.stdout.write(f"Demo client user {user.email} now sees " + "; ".join(linked) + ".")
