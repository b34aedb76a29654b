"""``manage.py sandbox_serve [--port 8765] [--host 127.0.0.1] [--db var/sandbox.sqlite3]``.

Runs the provider sandbox (``integrations.sandbox``) in the foreground until Ctrl-C, after
printing its URL and the standard accounts. A thin wrapper over ``SandboxServer``.
"""

from django.core.management.base import BaseCommand, CommandParser

from integrations.sandbox.accounts import describe_accounts
from integrations.sandbox.server import SandboxServer


class Command(BaseCommand):
    help = "Serve the ServiceM8/ServiceTitan sandbox emulator over HTTP on loopback."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
        parser.add_argument("--host", default="127.0.0.1", help="bind address (keep loopback)")
        parser.add_argument("--db", default="var/sandbox.sqlite3", help="SQLite file path")
        parser.add_argument("--log-requests", action="store_true", help="log every request")

    def handle(self, *args, **options) -> None:
        server = SandboxServer(
            options["db"],
            host=options["host"],
            port=options["port"],
            log_requests=options["log_requests"],
        ).start()
        self.stdout.write(self.style.SUCCESS(f"Sandbox listening on {server.url}"))
        self.stdout.write(f"  ServiceM8:    {server.url}/servicem8/api_1.0/company.json")
        self.stdout.write(
            f"  ServiceTitan: {server.url}/servicetitan/crm/v2/tenant/{{tenant}}/customers"
        )
        self.stdout.write(f"  Control:      {server.url}/_sandbox/stats")
        for line in describe_accounts():
            self.stdout.write(f"  {line}")
        self.stdout.flush()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            self.stdout.write("Stopping sandbox.")
        finally:
            server.stop()
