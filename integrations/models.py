from django.db import models
from django.db.models import Q

from integrations.encryption import EncryptedJSONField
from portal.models import TimeStampedModel


class Integration(TimeStampedModel):
    """One connection from a company to one provider account."""

    class Provider(models.TextChoices):
        SERVICEM8 = "servicem8", "ServiceM8"
        SERVICETITAN = "servicetitan", "ServiceTitan"
        HOUSECALL_PRO = "housecall_pro", "Housecall Pro"
        JOBBER = "jobber", "Jobber"
        FIELDEDGE = "fieldedge", "FieldEdge"
        HUBSPOT = "hubspot", "HubSpot"
        SALESFORCE = "salesforce", "Salesforce"

    class Environment(models.TextChoices):
        PRODUCTION = "production", "Production"
        SANDBOX = "sandbox", "Sandbox"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        NEEDS_REAUTH = "needs_reauth", "Needs reauthorization"
        DISABLED = "disabled", "Disabled"

    company = models.ForeignKey(
        "portal.Company", on_delete=models.CASCADE, related_name="integrations"
    )
    name = models.CharField(max_length=120, blank=True)
    provider = models.CharField(max_length=32, choices=Provider.choices)
    environment = models.CharField(
        max_length=12, choices=Environment.choices, default=Environment.PRODUCTION
    )
    # The provider account this integration reads (tenant id, account uuid…), once known.
    external_account_id = models.CharField(max_length=255, blank=True)
    base_url_override = models.URLField(blank=True)
    # Non-secret settings, safe to show (sold-by technician, partial-approval mode…).
    config = models.JSONField(default=dict, blank=True)
    credentials = EncryptedJSONField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    # Cache provider reads (GETs) for `read_cache_ttl` seconds; writes invalidate them.
    read_cache_enabled = models.BooleanField(default=False)
    read_cache_ttl = models.PositiveIntegerField(default=300)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE)
    last_test_ok = models.BooleanField(null=True, blank=True)
    last_test_message = models.TextField(blank=True)
    last_test_at = models.DateTimeField(null=True, blank=True)
    last_test_latency_ms = models.PositiveIntegerField(null=True, blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["company", "provider"]
        constraints = [
            models.UniqueConstraint(
                fields=["company", "provider", "environment", "external_account_id"],
                name="integrations_integration_account_uniq",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["active", "needs_reauth", "disabled"]),
                name="integrations_integration_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(environment__in=["production", "sandbox"]),
                name="integrations_integration_environment_valid",
            ),
        ]

    def __str__(self) -> str:
        label = self.name or self.get_provider_display()
        return f"{label} ({self.company}, {self.environment})"
