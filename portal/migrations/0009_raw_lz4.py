from django.db import migrations

from portal.migrations._raw_compression import raw_compression

SYNCED = [
    "attachment",
    "client",
    "contact",
    "invoice",
    "invoiceitem",
    "job",
    "jobactivity",
    "jobcontact",
    "jobmaterial",
    "location",
    "note",
    "payment",
    "pricebookcategory",
    "pricebookitem",
    "referencerecord",
    "staff",
]


class Migration(migrations.Migration):
    dependencies = [("portal", "0008_drop_redundant_sync_indexes")]

    operations = [raw_compression("portal", SYNCED)]
