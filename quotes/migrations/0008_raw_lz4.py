from django.db import migrations

from portal.migrations._raw_compression import raw_compression


class Migration(migrations.Migration):
    atomic = False  # (one brief lock per table; see _raw_compression)

    dependencies = [
        ("quotes", "0007_drop_redundant_sync_indexes"),
        ("portal", "0009_raw_lz4"),
    ]

    operations = [raw_compression("quotes")]
