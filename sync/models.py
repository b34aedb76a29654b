from django.db import models
from django.db.models import Q

from portal.models import TimeStampedModel


class SyncRun(models.Model):
    """One full, incremental or webhook-triggered pass over one entity of one integration."""

    class Mode(models.TextChoices):
        FULL = "full", "Full"
        INCREMENTAL = "incremental", "Incremental"
        WEBHOOK = "webhook", "Webhook"

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCESS = "success", "Success"
        PARTIAL = "partial", "Partial"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"
        DEFERRED = "deferred", "Deferred (rate-limit budget spent)"

    integration = models.ForeignKey(
        "integrations.Integration", on_delete=models.CASCADE, related_name="sync_runs"
    )
    entity = models.CharField(max_length=40)
    mode = models.CharField(max_length=12, choices=Mode.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    fetched_count = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    deleted_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    held_count = models.PositiveIntegerField(default=0)
    unchanged_count = models.PositiveIntegerField(default=0)
    pages_count = models.PositiveIntegerField(default=0)
    swept = models.BooleanField(default=False)
    retry_at = models.DateTimeField(null=True, blank=True)
    cursor_before = models.JSONField(null=True, blank=True)
    cursor_after = models.JSONField(null=True, blank=True)
    error_summary = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["integration", "entity", "-started_at"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(mode__in=["full", "incremental", "webhook"]), name="sync_run_mode_valid"
            ),
            models.CheckConstraint(
                condition=Q(
                    status__in=["running", "success", "partial", "failed", "cancelled", "deferred"]
                ),
                name="sync_run_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(finished_at__isnull=True) | Q(finished_at__gte=models.F("started_at")),
                name="sync_run_finish_after_start",
            ),
            # Only one run per integration and entity may be running at a time.
            # (A webhook's one-record re-fetch runs beside them: it never pages or sweeps.)
            models.UniqueConstraint(
                fields=["integration", "entity"],
                condition=Q(status="running") & ~Q(mode="webhook"),
                name="sync_run_one_running",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.integration_id}:{self.entity} {self.mode} {self.status}"


class SyncCursor(TimeStampedModel):
    """Where the next incremental run of one entity starts. `value` is provider-shaped JSON
    (a timestamp, the ids already seen at that timestamp, a page token)."""

    integration = models.ForeignKey(
        "integrations.Integration", on_delete=models.CASCADE, related_name="sync_cursors"
    )
    entity = models.CharField(max_length=40)
    value = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["integration", "entity"], name="sync_cursor_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.integration_id}:{self.entity}"


class SyncError(TimeStampedModel):
    """One record that failed mapping, validation or writing; the run went on without it."""

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="errors", null=True)
    integration = models.ForeignKey(
        "integrations.Integration", on_delete=models.CASCADE, related_name="sync_errors"
    )
    entity = models.CharField(max_length=40)
    external_id = models.CharField(max_length=255, blank=True)
    payload_excerpt = models.TextField(blank=True)
    message = models.TextField()
    retry_count = models.PositiveIntegerField(default=0)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["integration", "entity", "resolved_at"])]

    def __str__(self) -> str:
        return f"{self.entity}:{self.external_id} {self.message[:60]}"


class HeldRecord(TimeStampedModel):
    """A provider record that arrived before its parent (a job before its client): kept whole
    and retried on later runs, never dropped."""

    integration = models.ForeignKey(
        "integrations.Integration", on_delete=models.CASCADE, related_name="held_records"
    )
    entity = models.CharField(max_length=40)
    external_id = models.CharField(max_length=255)
    raw = models.JSONField(default=dict)
    waiting_for = models.CharField(max_length=255)
    attempts = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "entity", "external_id"], name="sync_heldrecord_uniq"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.entity}:{self.external_id} waiting for {self.waiting_for}"


class OutboxEvent(TimeStampedModel):
    """A write to a provider, recorded in the same transaction as the local change that caused
    it and delivered by the relay, at least once, deduplicated by `idempotency_key`."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed (will retry)"
        DEAD = "dead", "Dead (needs a person)"

    integration = models.ForeignKey(
        "integrations.Integration", on_delete=models.PROTECT, related_name="outbox_events"
    )
    action = models.CharField(max_length=60)
    aggregate_type = models.CharField(max_length=60)
    aggregate_id = models.CharField(max_length=64)
    payload = models.JSONField(default=dict)
    idempotency_key = models.CharField(max_length=120, unique=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    response = models.JSONField(null=True, blank=True)
    # The provider's refusal by field, when it gave one ({field: [messages]}).
    field_errors = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["aggregate_type", "aggregate_id"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "sending", "sent", "failed", "dead"]),
                name="sync_outbox_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.aggregate_type}:{self.aggregate_id} ({self.status})"


class WebhookEvent(TimeStampedModel):
    """One delivery from a provider, kept with its verification result. A provider's event id is
    stored once: a repeated delivery is a no-op."""

    class Verification(models.TextChoices):
        VALID = "valid", "Valid"
        INVALID = "invalid", "Invalid signature"
        MISSING = "missing", "No signature"
        NOT_REQUIRED = "not_required", "Not required"

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        PROCESSED = "processed", "Processed"
        IGNORED = "ignored", "Ignored"
        FAILED = "failed", "Failed"
        REJECTED = "rejected", "Rejected (not verified)"

    provider = models.CharField(max_length=32)
    integration = models.ForeignKey(
        "integrations.Integration",
        on_delete=models.CASCADE,
        related_name="webhook_events",
        null=True,
        blank=True,
    )
    external_event_id = models.CharField(max_length=255)
    event_type = models.CharField(max_length=120, blank=True)
    verification = models.CharField(max_length=12, choices=Verification.choices)
    # Why verification failed (safe to show: never a secret, a signature or the body).
    verification_reason = models.CharField(max_length=300, blank=True)
    # A rejected delivery keeps only the start of its body, never the whole unverified payload.
    body_excerpt = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RECEIVED)
    payload = models.JSONField(default=dict)
    error = models.TextField(blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "external_event_id"], name="sync_webhookevent_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.event_type} {self.external_event_id}"
