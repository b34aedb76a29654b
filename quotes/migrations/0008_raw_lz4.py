from django.db import migrations

from portal.migrations._raw_compression import raw_compression


class Migration(migrations.Migration):
    dependencies = [
        ("quotes", "0007_drop_redundant_sync_indexes"),
        ("portal", "0009_raw_lz4"),
    ]

    operations = [raw_compression("quotes", ["quote", "quotelineitem"])]
