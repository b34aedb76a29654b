"""Client portal page render times with 100,000 quotes (and 100,000 jobs) for one client user.

    .venv/bin/python bench/portal_pages.py [--quotes 100000] [--runs 40]

A PostgreSQL database (`fieldbridge_portal_bench`; DATABASE_URL, when set, must name a database
with "bench" in its name: it is dropped) is recreated and migrated. One company, one ServiceM8
integration and one client get `--quotes` quotes (all awaiting a decision, spread validity
dates) and as many jobs; one quote has 50 line items and one job 20 activities and materials.
Another company's client gets 10,000 quotes, so tenancy filters have rows to skip. After
VACUUM ANALYZE (what autovacuum does after a bulk load), Django's test client (a real request
cycle: middleware, session, auth, templates; no network) signed in as the client user
requests each page `--runs` times after two warm-ups and the script prints median, p95 and
max milliseconds and the queries per page, against the target: every page under 100 ms at 50
items a page. Settings: config.settings.test (DEBUG off).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/fieldbridge_portal_bench"
TARGET_MS = 100.0
BATCH = 5000


def recreate_database(url: str) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if "bench" not in name:
        sys.exit(f"refusing to drop {name!r}: the benchmark database's name must contain 'bench'")
    admin = ["psql", "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432)]
    admin += ["-U", parts.username or "postgres", "-d", "postgres", "-q", "-c"]
    subprocess.run([*admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'], check=True)  # noqa: S603
    subprocess.run([*admin, f'CREATE DATABASE "{name}"'], check=True)  # noqa: S603


def seed(n_quotes: int):
    from django.utils import timezone

    from portal.models import (
        Client,
        ClientMembership,
        Company,
        Job,
        JobActivity,
        JobMaterial,
        Staff,
        User,
    )
    from quotes.models import Quote, QuoteLineItem
    from tests.factories import IntegrationFactory

    def company_with_client(slug: str):
        company = Company.objects.create(name=slug.title(), slug=slug)
        integration = IntegrationFactory(company=company, provider="servicem8")
        client = Client.objects.create(integration=integration, external_id=f"{slug}-c", name=slug)
        return integration, client

    integration, client = company_with_client("bench-plumbing")
    other_integration, other_client = company_with_client("other-company")
    user = User.objects.create_user(email="bench@client.test", password="bench-pass-123")  # noqa: S106
    ClientMembership.objects.create(user=user, client=client)
    today = timezone.now().date()
    now = timezone.now()

    def quotes(integ, owner, count, prefix):
        for start in range(0, count, BATCH):
            Quote.objects.bulk_create(
                Quote(
                    integration=integ,
                    client=owner,
                    external_id=f"{prefix}-q-{n}",
                    number=f"Q{n:06d}",
                    title=f"Hot water system replacement {n}",
                    status=Quote.Status.SENT,
                    total=Decimal("1234.50"),
                    subtotal=Decimal("1122.27"),
                    tax_total=Decimal("112.23"),
                    valid_until=today + timedelta(days=n % 90),
                    sent_at=now - timedelta(minutes=n),
                )
                for n in range(start, min(count, start + BATCH))
            )

    def jobs(integ, owner, count, prefix):
        for start in range(0, count, BATCH):
            Job.objects.bulk_create(
                Job(
                    integration=integ,
                    client=owner,
                    external_id=f"{prefix}-j-{n}",
                    number=f"J{n:06d}",
                    summary=f"Service visit {n}",
                    status=Job.Status.SCHEDULED,
                    address="1 Harbour St, Sydney",
                    scheduled_start=now + timedelta(hours=n - count // 2),
                )
                for n in range(start, min(count, start + BATCH))
            )

    t0 = time.perf_counter()
    quotes(integration, client, n_quotes, "a")
    jobs(integration, client, n_quotes, "a")
    quotes(other_integration, other_client, 10_000, "b")
    jobs(other_integration, other_client, 10_000, "b")
    quote = Quote.objects.filter(client=client).order_by("pk").first()
    job = Job.objects.filter(client=client).order_by("pk").first()
    quote.job = job
    quote.save(update_fields=["job"])
    QuoteLineItem.objects.bulk_create(
        QuoteLineItem(
            integration=integration,
            quote=quote,
            external_id=f"li-{n}",
            name=f"Item {n}",
            total=Decimal("22.45"),
            sort_order=n,
        )
        for n in range(50)
    )
    staff = Staff.objects.create(integration=integration, external_id="s-1", first_name="Sam")
    for n in range(20):
        activity = JobActivity.objects.create(
            integration=integration, job=job, external_id=f"act-{n}", starts_at=now
        )
        activity.staff.add(staff)
        JobMaterial.objects.create(
            integration=integration, job=job, external_id=f"m-{n}", name=f"Part {n}"
        )
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # what autovacuum does after a bulk load
    print(
        f"seeded {n_quotes:,} quotes and jobs (+10,000 of another company) in "
        f"{time.perf_counter() - t0:.0f} s",
        flush=True,
    )
    return user, quote, job


def deep_token(user) -> str:
    """The "Next" token that leads to page 1,000 (rows 49,951-50,000) of the awaiting list."""
    from portal.paging import _encode
    from quotes.selectors import quote_list_awaiting_decision

    row = quote_list_awaiting_decision(user=user).order_by("valid_until", "pk")[49_949]
    return _encode(row.valid_until, row.pk)


def measure(user, quote, job, runs: int) -> bool:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    browser = Client()
    browser.force_login(user)
    pages = {
        "dashboard": "/",
        "quotes awaiting (page 1)": "/quotes/",
        "quotes awaiting (page 1000)": f"/quotes/?after={deep_token(user)}",
        "quotes all + search": "/quotes/?show=all&q=Q0123",
        "quotes search, no match": "/quotes/?show=all&q=nomatch",
        "jobs search, no match": "/jobs/?q=nomatch",
        "quotes decided": "/quotes/?show=decided",
        "quote detail (50 items)": f"/quotes/{quote.pk}/",
        "jobs (page 1)": "/jobs/",
        "jobs filtered": "/jobs/?status=scheduled&from=2020-01-01",
        "job detail": f"/jobs/{job.pk}/",
    }
    ok = True
    print(f"\n{'page':32} {'median':>8} {'p95':>8} {'max':>8} {'queries':>8}  (ms; {runs} runs)")
    for name, url in pages.items():
        for _ in range(2):
            assert browser.get(url).status_code == 200, url
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            response = browser.get(url)
            times.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200
        with CaptureQueriesContext(connection) as captured:
            browser.get(url)
        p95 = statistics.quantiles(times, n=20)[18]
        verdict = "ok" if p95 < TARGET_MS else "SLOW"
        ok &= p95 < TARGET_MS
        print(
            f"{name:32} {statistics.median(times):8.1f} {p95:8.1f} {max(times):8.1f} "
            f"{len(captured):8d}  {verdict}"
        )
    print(f"\nload average while measuring: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)")
    print(f"target: every page p95 under {TARGET_MS:.0f} ms -> {'MET' if ok else 'MISSED'}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quotes", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    if "bench" not in urlsplit(url).path:
        url = DEFAULT_DATABASE_URL
    recreate_database(url)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.ALLOWED_HOSTS = ["*"]
    call_command("migrate", verbosity=0)
    user, quote, job = seed(args.quotes)
    sys.exit(0 if measure(user, quote, job, args.runs) else 1)


if __name__ == "__main__":
    main()
