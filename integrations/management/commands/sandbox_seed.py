"""``manage.py sandbox_seed --records N --db PATH [--seed 42] [--reset] [mix options]``.

A thin wrapper over ``integrations.sandbox.seed.seed`` (see that module for what is generated).
"""

from django.core.management.base import BaseCommand, CommandParser

from integrations.sandbox.seed import CLIENTS_ONLY, Mix, seed

DEFAULT_MIX = Mix()


class Command(BaseCommand):
    help = (
        "Seed the provider sandbox database with deterministic, mutually consistent ServiceM8 "
        "and ServiceTitan data: N clients per provider (ServiceM8 companies, ServiceTitan "
        "customers) and, scaled from N, their contacts, locations, jobs (ServiceM8 quotes are "
        "jobs with status Quote), job materials, job activities, appointments and estimates "
        "with line items, plus fixed catalogues (staff/technicians, employees, pricebook, "
        "categories, tax rates, business units, job types). The default mix makes about 22 "
        "records per client pair: --records 1000 gives ~22,000 records in half a second; "
        "--records 1000000 (the benchmark size) ~22 million records and a ~16 GB file in ~6 "
        "minutes on 2 cores. --clients-only (clients, ServiceTitan locations and the "
        "catalogues: 3 million records, ~1.6 GB, ~35 s at 1,000,000) or lower per-client "
        "ratios make smaller benchmark databases."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--records", type=int, default=1000, help="clients per provider (default 1000)"
        )
        parser.add_argument("--db", default="var/sandbox.sqlite3", help="SQLite file path")
        parser.add_argument("--seed", type=int, default=42, help="random seed (content)")
        parser.add_argument("--reset", action="store_true", help="delete all records first")
        parser.add_argument(
            "--contacts-per-client",
            type=float,
            default=DEFAULT_MIX.contacts_per_client,
            help="client contacts per client, both providers (default %(default)s)",
        )
        parser.add_argument(
            "--jobs-per-client",
            type=float,
            default=DEFAULT_MIX.jobs_per_client,
            help="jobs per client incl. ServiceM8 quotes; 2-6 job materials and 0-2 activities "
            "per ServiceM8 job, one appointment per ServiceTitan job (default %(default)s)",
        )
        parser.add_argument(
            "--estimates-per-client",
            type=float,
            default=DEFAULT_MIX.estimates_per_client,
            help="ServiceTitan estimates per customer, 0 without jobs (default %(default)s)",
        )
        parser.add_argument(
            "--clients-only",
            action="store_true",
            help="only clients (ServiceTitan customers keep their one location) and the fixed "
            "catalogues: all ratios 0",
        )

    def handle(self, *args, **options) -> None:
        if options["clients_only"]:
            mix = CLIENTS_ONLY
        else:
            mix = Mix(
                contacts_per_client=options["contacts_per_client"],
                jobs_per_client=options["jobs_per_client"],
                estimates_per_client=options["estimates_per_client"],
            )
        result = seed(
            options["db"],
            records=options["records"],
            seed=options["seed"],
            reset=options["reset"],
            mix=mix,
        )
        per_provider = {key: value for key, value in result.items() if isinstance(value, dict)}
        for provider, counts in per_provider.items():
            listed = ", ".join(f"{obj} {n:,}" for obj, n in counts.items())
            self.stdout.write(f"{provider}: {listed}")
        total = sum(sum(counts.values()) for counts in per_provider.values())
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded {options['db']}: {total:,} records in {result['seconds']:.1f} s."
            )
        )
