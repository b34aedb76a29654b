"""``manage.py sandbox_seed --records N --db PATH [--seed 42] [--reset]``: fill the sandbox DB.

A thin wrapper over ``integrations.sandbox.seed.seed`` (see that module for what is generated).
"""

from django.core.management.base import BaseCommand, CommandParser

from integrations.sandbox.seed import seed


class Command(BaseCommand):
    help = "Seed the provider sandbox database with deterministic ServiceM8/ServiceTitan clients."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--records", type=int, default=1000, help="clients per provider")
        parser.add_argument("--db", default="var/sandbox.sqlite3", help="SQLite file path")
        parser.add_argument("--seed", type=int, default=42, help="random seed (content)")
        parser.add_argument("--reset", action="store_true", help="delete all records first")

    def handle(self, *args, **options) -> None:
        result = seed(
            options["db"], records=options["records"], seed=options["seed"], reset=options["reset"]
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded {options['db']}: ServiceM8 company {result['servicem8']['company']}, "
                f"ServiceTitan customers {result['servicetitan']['customers']} "
                f"in {result['seconds']:.1f} s."
            )
        )
