from django.db import migrations

from portal.migrations._raw_compression import raw_compression


class Migration(migrations.Migration):
    atomic = False  # (one brief lock per table; see _raw_compression)

    dependencies = [("portal", "0008_drop_redundant_sync_indexes")]

    operations = [raw_compression("portal")]
