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


class ConnectionTest(models.Model):
    """One press of "Test connection": the history behind Integration.last_test_*."""

    integration = models.ForeignKey(
        Integration, on_delete=models.CASCADE, related_name="connection_tests"
    )
    tested_by = models.ForeignKey(
        "portal.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    ok = models.BooleanField()
    message = models.TextField(blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["integration", "-created_at"])]

    def __str__(self) -> str:
        return f"{'OK' if self.ok else 'Failed'} {self.created_at:%Y-%m-%d %H:%M:%S}"


class Incident(models.Model):
    """Something about an integration that needs a person. At most one incident of a kind is
    open per integration: admins are alerted when it opens (not on every retry), and it is
    closed when the condition clears, so the next occurrence alerts again."""

    class Kind(models.TextChoices):
        NEEDS_REAUTH = "needs_reauth", "Needs reauthorization"
        SYNC_FAILING = "sync_failing", "Sync failing repeatedly"
        DEAD_LETTERS = "dead_letters", "Dead letters piling up"

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="incidents")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    detail = models.TextField(blank=True)
    opened_at = models.DateTimeField(auto_now_add=True)
    notified_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "kind"],
                condition=Q(closed_at__isnull=True),
                name="integrations_incident_one_open",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["needs_reauth", "sync_failing", "dead_letters"]),
                name="integrations_incident_kind_valid",
            ),
        ]

    def __str__(self) -> str:
        state = "closed" if self.closed_at else "open"
        return f"{self.get_kind_display()} ({state})"
