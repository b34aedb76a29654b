"""Serializer bases shared by the apps' output serializers."""

from rest_framework import serializers


class SyncedOutputSerializer(serializers.Serializer):
    """The fields every record synced from a provider carries."""

    id = serializers.IntegerField(help_text="Fieldbridge's id of this record.")
    integration_id = serializers.IntegerField(
        help_text="The integration (provider connection) this record was synced from."
    )
    external_id = serializers.CharField(help_text="The provider's id of this record.")
    remote_updated_at = serializers.DateTimeField(
        allow_null=True, help_text="When the provider last changed it, if it says."
    )
    created_at = serializers.DateTimeField(help_text="When Fieldbridge first synced it.")
    updated_at = serializers.DateTimeField(help_text="When Fieldbridge last changed it.")
