from django.core.management.base import BaseCommand
from django.urls import reverse

from portal.services import demo_seed


class Command(BaseCommand):
    help = "Create or reset the demo company, its admin and client user; print how to sign in."

    def add_arguments(self, parser):
        parser.add_argument(
            "--password", default="fieldbridge-demo", help="Password for both demo users."
        )
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument(
            "--sandbox-url",
            default="",
            help="Point the demo ServiceM8 integration at the provider sandbox at this root URL.",
        )

    def handle(self, *args, password: str, base_url: str, sandbox_url: str, **options):
        demo = demo_seed(password=password, sandbox_url=sandbox_url)
        admin_url = f"{base_url}{reverse('admin:index')}"
        self.stdout.write(self.style.SUCCESS(f"Demo company ready: {demo.company.name}"))
        self.stdout.write(f"  Admin       {admin_url}")
        self.stdout.write(f"              {demo.admin.email} / {password}")
        self.stdout.write(f"  Client user {base_url}{reverse('portal:login')}")
        self.stdout.write(
            f"              {demo.client_user.email} / {password}  (client: {demo.client.name})"
        )
