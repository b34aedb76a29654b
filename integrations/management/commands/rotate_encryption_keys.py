from django.core.management.base import BaseCommand

from integrations.encryption import encryption_keys_rotate


class Command(BaseCommand):
    help = "Re-encrypt every stored secret with the first key in FIELD_ENCRYPTION_KEYS."

    def handle(self, *args, **options):
        count = encryption_keys_rotate()
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {count} value(s) with the newest key."))
