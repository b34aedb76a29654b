import zoneinfo
from decimal import Decimal

from django.contrib.auth.models import AbstractUser, UserManager
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

from portal.constraints import ParentInIntegration

MONEY = {"max_digits": 14, "decimal_places": 2}
QUANTITY = {"max_digits": 12, "decimal_places": 4}


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class SyncedModel(TimeStampedModel):
    """A row copied from a provider. (integration, external_id) identifies it; `raw` keeps the
    provider's payload whole, so nothing the provider sent is lost. The tenant is the
    integration's company: no second company column that could disagree with it."""

    # No index of its own on either: the unique (integration, external_id) index serves
    # `integration_id` as its prefix, and every query on remote_deleted_at asks IS NULL of
    # most of a table (the partial indexes carry that condition). Each index costs upkeep on
    # every row a sync writes.
    integration = models.ForeignKey(
        "integrations.Integration", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    external_id = models.CharField(max_length=255)
    remote_updated_at = models.DateTimeField(null=True, blank=True)
    remote_deleted_at = models.DateTimeField(null=True, blank=True)
    raw = models.JSONField(default=dict, blank=True)
    # A digest of what the sync engine last wrote: a row is rewritten only when it changes.
    content_hash = models.CharField(max_length=32, blank=True, editable=False)

    class Meta:
        abstract = True
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "external_id"], name="%(app_label)s_%(class)s_external_uniq"
            ),
            models.CheckConstraint(
                condition=~Q(external_id=""), name="%(app_label)s_%(class)s_external_id_set"
            ),
        ]


class SyncedChild(SyncedModel):
    """A synced row that cannot exist without its parent (a job's materials, a quote's line
    items…). In the database its parent and its integration are one foreign key,
    `ParentInIntegration` (portal.constraints says why), which each subclass's Meta declares
    with its parent link's `db_constraint=False`; the parent model declares `parent_key`."""

    integration = models.ForeignKey(
        "integrations.Integration",
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )

    class Meta(SyncedModel.Meta):
        abstract = True


def parent_key(model_name: str) -> models.UniqueConstraint:
    """The (id, integration) unique key that a `SyncedChild`'s foreign key references (the
    primary key alone is unique already; a foreign key needs a key over both columns)."""
    return models.UniqueConstraint(fields=["id", "integration"], name=f"{model_name}_parent_key")


def in_integration(model_name: str, field: str) -> ParentInIntegration:
    return ParentInIntegration(field=field, name=f"{model_name}_{field}_in_integration")


class _EmailUserManager(UserManager):
    """Django's manager keyed on email instead of username (a custom user model needs one)."""

    def _create_user(self, email, password, **extra_fields):
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def get_by_natural_key(self, username):
        # Addresses are stored lower-case; people type them however they like.
        return self.get(email__iexact=username)

    def create_user(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra_fields)


class User(AbstractUser):
    """Signs in with an email address. Team members, client users and operators are all Users;
    what they may see comes from TeamMembership and ClientMembership."""

    username = None
    email = models.EmailField("email address", unique=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = _EmailUserManager()

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="portal_user_email_ci_uniq")]

    def __str__(self) -> str:
        return self.email


def zone_named(name: str | None) -> zoneinfo.ZoneInfo | None:
    """The time zone called `name`, or None when there is no such zone."""
    try:
        return zoneinfo.ZoneInfo(name) if name else None
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


class Company(TimeStampedModel):
    """A field-service business using Fieldbridge: the tenant."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    timezone = models.CharField(max_length=64, default="UTC")

    class Meta:
        verbose_name_plural = "companies"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        """The business's time zone (UTC if its name is not a known zone)."""
        return zone_named(self.timezone) or zoneinfo.ZoneInfo("UTC")


zip_code_validator = RegexValidator(
    r"^[0-9A-Za-z][0-9A-Za-z -]{1,9}$", "Enter a valid zip or postal code."
)


class ServiceArea(models.Model):
    """One zip or postal code that a company serves."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="service_areas")
    zip_code = models.CharField(max_length=10, validators=[zip_code_validator])

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "zip_code"], name="portal_servicearea_uniq"),
        ]
        indexes = [models.Index(fields=["zip_code"])]

    def __str__(self) -> str:
        return self.zip_code


class Skill(models.Model):
    """A trade skill (e.g. water-heater install) that companies hold at some level."""

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=80, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class CompanySkill(models.Model):
    class Level(models.TextChoices):
        BASIC = "basic", "Basic"
        INTERMEDIATE = "intermediate", "Intermediate"
        EXPERT = "expert", "Expert"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="skills")
    skill = models.ForeignKey(Skill, on_delete=models.PROTECT, related_name="company_skills")
    level = models.CharField(max_length=12, choices=Level.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "skill"], name="portal_companyskill_uniq"),
            models.CheckConstraint(
                condition=Q(level__in=["basic", "intermediate", "expert"]),
                name="portal_companyskill_level_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.skill} ({self.level})"


class TeamMembership(TimeStampedModel):
    """A user who works for a company and signs into the admin."""

    class Role(models.TextChoices):
        ADMIN = "admin", "Admin"
        DISPATCHER = "dispatcher", "Dispatcher"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="team_memberships")
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="team_memberships")
    role = models.CharField(max_length=12, choices=Role.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "company"], name="portal_teammembership_uniq"),
            models.CheckConstraint(
                condition=Q(role__in=["admin", "dispatcher"]),
                name="portal_teammembership_role_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.company} ({self.role})"


class Client(SyncedModel):
    """A company's customer: a ServiceM8 company, ServiceTitan customer, Jobber client, HubSpot
    company or Salesforce account."""

    class Kind(models.TextChoices):
        RESIDENTIAL = "residential", "Residential"
        COMMERCIAL = "commercial", "Commercial"
        UNKNOWN = "unknown", "Unknown"

    name = models.CharField(max_length=255)
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.UNKNOWN)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=50, blank=True)
    address = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    # A site's head office (ServiceM8 `parent_company_uuid`): the head office's client users
    # also see its sites' jobs and quotes (portal.selectors). Not set for ServiceTitan's
    # merged customers (`mergedToId`): sync.writers keeps merges out of it.
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="sites"
    )

    class Meta(SyncedModel.Meta):
        ordering = ["name"]
        indexes = [models.Index(fields=["integration", "name"])]

    def __str__(self) -> str:
        return self.name


class ClientMembership(TimeStampedModel):
    """A client user who may see one client's jobs and quotes."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="client_memberships")
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="memberships")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "client"], name="portal_clientmembership_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.user} → {self.client}"


class Contact(SyncedModel):
    client = models.ForeignKey(
        Client, on_delete=models.CASCADE, related_name="contacts", null=True, blank=True
    )
    first_name = models.CharField(max_length=120, blank=True)
    last_name = models.CharField(max_length=120, blank=True)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=50, blank=True)
    mobile = models.CharField(max_length=50, blank=True)
    role = models.CharField(max_length=120, blank=True)
    is_primary = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name}".strip() or self.email or self.external_id


class Location(SyncedModel):
    """A service address, usually a client's site."""

    client = models.ForeignKey(
        Client, on_delete=models.CASCADE, related_name="locations", null=True, blank=True
    )
    name = models.CharField(max_length=255, blank=True)
    street = models.CharField(max_length=255, blank=True)
    street2 = models.CharField(max_length=255, blank=True)
    city = models.CharField(max_length=120, blank=True)
    region = models.CharField(max_length=120, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    country = models.CharField(max_length=2, blank=True)
    latitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    longitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)

    class Meta(SyncedModel.Meta):
        constraints = [
            *SyncedModel.Meta.constraints,
            models.CheckConstraint(
                condition=Q(latitude__isnull=True) | Q(latitude__gte=-90, latitude__lte=90),
                name="portal_location_latitude_range",
            ),
            models.CheckConstraint(
                condition=Q(longitude__isnull=True) | Q(longitude__gte=-180, longitude__lte=180),
                name="portal_location_longitude_range",
            ),
        ]

    def __str__(self) -> str:
        return ", ".join(p for p in (self.street, self.city, self.postal_code) if p) or self.name


class Staff(SyncedModel):
    """A technician or employee as the provider knows them. Synced; not a user."""

    class Kind(models.TextChoices):
        TECHNICIAN = "technician", "Technician"
        EMPLOYEE = "employee", "Employee"

    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.TECHNICIAN)
    first_name = models.CharField(max_length=120, blank=True)
    last_name = models.CharField(max_length=120, blank=True)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=50, blank=True)
    title = models.CharField(max_length=120, blank=True)
    is_active = models.BooleanField(default=True)

    class Meta(SyncedModel.Meta):
        verbose_name_plural = "staff"

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name}".strip() or self.external_id


class Job(SyncedModel):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        UNSCHEDULED = "unscheduled", "Unscheduled"
        SCHEDULED = "scheduled", "Scheduled"
        DISPATCHED = "dispatched", "Dispatched"
        IN_PROGRESS = "in_progress", "In progress"
        ON_HOLD = "on_hold", "On hold"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"

    class Priority(models.TextChoices):
        LOW = "low", "Low"
        NORMAL = "normal", "Normal"
        HIGH = "high", "High"
        URGENT = "urgent", "Urgent"

    client = models.ForeignKey(
        Client, on_delete=models.PROTECT, related_name="jobs", null=True, blank=True
    )
    location = models.ForeignKey(
        Location, on_delete=models.SET_NULL, related_name="jobs", null=True, blank=True
    )
    number = models.CharField(max_length=64, blank=True)
    summary = models.CharField(max_length=255, blank=True)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    # The provider's own status word, kept verbatim (unknown statuses map to a safe value above).
    provider_status = models.CharField(max_length=64, blank=True)
    priority = models.CharField(max_length=8, choices=Priority.choices, default=Priority.NORMAL)
    category = models.CharField(max_length=120, blank=True)
    address = models.TextField(blank=True)
    scheduled_start = models.DateTimeField(null=True, blank=True)
    scheduled_end = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    revenue = models.DecimalField(**MONEY, default=Decimal("0.00"))

    class Meta(SyncedModel.Meta):
        ordering = ["-scheduled_start", "-id"]
        indexes = [
            models.Index(fields=["integration", "status"]),
            # The portal's job lists walk these in page order (newest scheduled first).
            models.Index(
                fields=["client", "scheduled_start", "id"],
                condition=Q(remote_deleted_at__isnull=True),
                name="job_client_sched_idx",
            ),
            models.Index(
                fields=["integration", "scheduled_start", "id"],
                condition=Q(remote_deleted_at__isnull=True),
                name="job_integ_sched_idx",
            ),
        ]
        constraints = [
            *SyncedModel.Meta.constraints,
            parent_key("portal_job"),
            models.CheckConstraint(
                condition=Q(
                    status__in=[
                        "pending",
                        "unscheduled",
                        "scheduled",
                        "dispatched",
                        "in_progress",
                        "on_hold",
                        "completed",
                        "cancelled",
                    ]
                ),
                name="portal_job_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(scheduled_end__isnull=True)
                | Q(scheduled_start__isnull=True)
                | Q(scheduled_end__gte=models.F("scheduled_start")),
                name="portal_job_schedule_order",
            ),
        ]

    def __str__(self) -> str:
        return self.number or self.summary or self.external_id


class JobActivity(SyncedChild):
    """A scheduled visit or appointment, with the staff assigned to it."""

    job = models.ForeignKey(
        Job, on_delete=models.CASCADE, related_name="activities", db_constraint=False
    )
    staff = models.ManyToManyField(Staff, related_name="activities", blank=True)
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=64, blank=True)
    notes = models.TextField(blank=True)

    class Meta(SyncedModel.Meta):
        verbose_name_plural = "job activities"
        ordering = ["starts_at"]
        constraints = [
            *SyncedModel.Meta.constraints,
            in_integration("portal_jobactivity", "job"),
            models.CheckConstraint(
                condition=Q(ends_at__isnull=True)
                | Q(starts_at__isnull=True)
                | Q(ends_at__gte=models.F("starts_at")),
                name="portal_jobactivity_time_order",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.job} @ {self.starts_at:%Y-%m-%d %H:%M}" if self.starts_at else str(self.job)


class Attachment(SyncedChild):
    """A file's metadata. `provider_reference` says how to fetch it through the provider; the
    portal serves it through an authorised view, never by exposing a provider URL."""

    job = models.ForeignKey(
        Job, on_delete=models.CASCADE, related_name="attachments", db_constraint=False
    )
    file_name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=120, blank=True)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    provider_reference = models.CharField(max_length=500, blank=True)

    class Meta(SyncedModel.Meta):
        constraints = [
            *SyncedModel.Meta.constraints,
            in_integration("portal_attachment", "job"),
            models.CheckConstraint(
                condition=Q(size_bytes__isnull=True) | Q(size_bytes__gte=0),
                name="portal_attachment_size_nonnegative",
            ),
        ]

    def __str__(self) -> str:
        return self.file_name


class JobMaterial(SyncedChild):
    job = models.ForeignKey(
        Job, on_delete=models.CASCADE, related_name="materials", db_constraint=False
    )
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    quantity = models.DecimalField(**QUANTITY, default=Decimal("1"))
    unit_price = models.DecimalField(**MONEY, default=Decimal("0.00"))
    total = models.DecimalField(**MONEY, default=Decimal("0.00"))
    sort_order = models.PositiveIntegerField(default=0)

    class Meta(SyncedModel.Meta):
        ordering = ["sort_order", "id"]
        constraints = [*SyncedModel.Meta.constraints, in_integration("portal_jobmaterial", "job")]

    def __str__(self) -> str:
        return self.name


class JobContact(SyncedChild):
    """A person named on one job (ServiceM8 jobcontact: the job's site contact, billing
    contact, property manager…), as distinct from the client's own contacts."""

    job = models.ForeignKey(
        Job, on_delete=models.CASCADE, related_name="contacts", db_constraint=False
    )
    role = models.CharField(max_length=120, blank=True)
    first_name = models.CharField(max_length=120, blank=True)
    last_name = models.CharField(max_length=120, blank=True)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=50, blank=True)
    mobile = models.CharField(max_length=50, blank=True)

    class Meta(SyncedModel.Meta):
        constraints = [*SyncedModel.Meta.constraints, in_integration("portal_jobcontact", "job")]

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name}".strip() or self.email or self.external_id


class Note(SyncedModel):
    """A note the provider keeps on a job (or on a client): ServiceM8 note, ServiceTitan job
    notes. Synced, never edited here."""

    job = models.ForeignKey(
        Job, on_delete=models.CASCADE, related_name="notes", null=True, blank=True
    )
    client = models.ForeignKey(
        Client, on_delete=models.CASCADE, related_name="notes", null=True, blank=True
    )
    body = models.TextField(blank=True)
    author = models.CharField(max_length=255, blank=True)
    noted_at = models.DateTimeField(null=True, blank=True)

    class Meta(SyncedModel.Meta):
        ordering = ["-noted_at", "-id"]

    def __str__(self) -> str:
        return (self.body[:60] + "…") if len(self.body) > 60 else self.body or self.external_id


class ReferenceRecord(SyncedModel):
    """A provider's lookup or configuration object that the portal shows and writes refer to
    but does not model on its own: job types, business units, tag types, campaigns, cancel
    and hold reasons, dispatch zones, teams and technician shifts, projects, tax rates, job
    categories, material bundles, inventory vendors, warehouses, purchase orders and
    adjustments. `kind` says which; `raw` keeps the payload whole.

    Convention: `external_id` is "<kind>:<provider id>" (ids of different kinds may collide
    within one integration), and each kind is its own sync entity whose full-run sweep is
    limited to its kind (`Provider.sweep_scope`)."""

    kind = models.CharField(max_length=40)
    name = models.CharField(max_length=255, blank=True)
    code = models.CharField(max_length=120, blank=True)
    is_active = models.BooleanField(default=True)
    # The external id of another record this one belongs to (a shift's technician, a
    # purchase order's vendor, a team's zone…), as "<kind>:<id>" or a plain provider id.
    parent_external_id = models.CharField(max_length=255, blank=True)

    class Meta(SyncedModel.Meta):
        ordering = ["kind", "name", "id"]
        indexes = [models.Index(fields=["integration", "kind"])]

    def __str__(self) -> str:
        return f"{self.kind}: {self.name or self.code or self.external_id}"


class PricebookCategory(SyncedModel):
    """A pricebook category; subcategories point at their parent, so categories form a tree."""

    parent = models.ForeignKey(
        "self", on_delete=models.SET_NULL, related_name="children", null=True, blank=True
    )
    name = models.CharField(max_length=255)
    kind = models.CharField(max_length=40, blank=True)  # e.g. ServiceTitan Materials | Services
    is_active = models.BooleanField(default=True)
    sort_order = models.IntegerField(default=0)

    class Meta(SyncedModel.Meta):
        verbose_name_plural = "pricebook categories"
        ordering = ["sort_order", "name", "id"]

    def __str__(self) -> str:
        return self.name


class PricebookItem(SyncedModel):
    """Something a business sells: a material, a service, a piece of equipment, a discount or
    a fee (ServiceTitan pricebook; ServiceM8 material)."""

    class Kind(models.TextChoices):
        MATERIAL = "material", "Material"
        SERVICE = "service", "Service"
        EQUIPMENT = "equipment", "Equipment"
        DISCOUNT_FEE = "discount_fee", "Discount or fee"

    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.MATERIAL)
    code = models.CharField(max_length=120, blank=True)  # SKU / item number
    name = models.CharField(max_length=255, blank=True)
    description = models.TextField(blank=True)
    unit_price = models.DecimalField(**MONEY, default=Decimal("0.00"))
    cost = models.DecimalField(**MONEY, null=True, blank=True)
    unit = models.CharField(max_length=40, blank=True)
    is_taxable = models.BooleanField(default=True)
    is_active = models.BooleanField(default=True)
    categories = models.ManyToManyField(PricebookCategory, related_name="items", blank=True)

    class Meta(SyncedModel.Meta):
        ordering = ["kind", "name", "id"]
        indexes = [models.Index(fields=["integration", "kind", "code"])]
        constraints = [
            *SyncedModel.Meta.constraints,
            models.CheckConstraint(
                condition=Q(kind__in=["material", "service", "equipment", "discount_fee"]),
                name="portal_pricebookitem_kind_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}".strip() or self.external_id


class Invoice(SyncedModel):
    """An invoice as the provider keeps it (ServiceTitan accounting), with its items."""

    client = models.ForeignKey(
        Client, on_delete=models.PROTECT, related_name="invoices", null=True, blank=True
    )
    job = models.ForeignKey(
        Job, on_delete=models.SET_NULL, related_name="invoices", null=True, blank=True
    )
    number = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=64, blank=True)
    issued_on = models.DateField(null=True, blank=True)
    due_on = models.DateField(null=True, blank=True)
    subtotal = models.DecimalField(**MONEY, default=Decimal("0.00"))
    tax_total = models.DecimalField(**MONEY, default=Decimal("0.00"))
    total = models.DecimalField(**MONEY, default=Decimal("0.00"))
    balance = models.DecimalField(**MONEY, default=Decimal("0.00"))

    class Meta(SyncedModel.Meta):
        ordering = ["-issued_on", "-id"]
        constraints = [*SyncedModel.Meta.constraints, parent_key("portal_invoice")]

    def __str__(self) -> str:
        return self.number or self.external_id


class InvoiceItem(SyncedChild):
    invoice = models.ForeignKey(
        Invoice, on_delete=models.CASCADE, related_name="items", db_constraint=False
    )
    name = models.CharField(max_length=255, blank=True)
    description = models.TextField(blank=True)
    quantity = models.DecimalField(**QUANTITY, default=Decimal("1"))
    unit_price = models.DecimalField(**MONEY, default=Decimal("0.00"))
    total = models.DecimalField(**MONEY, default=Decimal("0.00"))
    sort_order = models.PositiveIntegerField(default=0)

    class Meta(SyncedModel.Meta):
        ordering = ["sort_order", "id"]
        constraints = [
            *SyncedModel.Meta.constraints,
            in_integration("portal_invoiceitem", "invoice"),
        ]

    def __str__(self) -> str:
        return self.name or self.external_id


class Payment(SyncedModel):
    """A payment received, possibly split over several invoices (`raw` keeps the split)."""

    client = models.ForeignKey(
        Client, on_delete=models.PROTECT, related_name="payments", null=True, blank=True
    )
    invoice = models.ForeignKey(
        Invoice, on_delete=models.SET_NULL, related_name="payments", null=True, blank=True
    )
    amount = models.DecimalField(**MONEY, default=Decimal("0.00"))
    paid_on = models.DateField(null=True, blank=True)
    method = models.CharField(max_length=120, blank=True)
    # (not "reference": sync.writers' digest needs no field between "raw" and "remote_…")
    payment_reference = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=64, blank=True)

    class Meta(SyncedModel.Meta):
        ordering = ["-paid_on", "-id"]

    def __str__(self) -> str:
        return f"{self.amount} {self.paid_on or ''}".strip()


class Booking(TimeStampedModel):
    """A request for work that becomes a job at the provider (through the outbox's
    `job.create`). The fields are what every provider needs; `options` holds a provider's own
    references (ServiceTitan business unit, job type, campaign…). Its delivery state is its
    outbox event's; `external_job_id` is the provider's job once created."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        CREATED = "created", "Created at the provider"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    integration = models.ForeignKey(
        "integrations.Integration", on_delete=models.PROTECT, related_name="bookings"
    )
    reference = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    client = models.ForeignKey(
        Client, on_delete=models.SET_NULL, related_name="bookings", null=True, blank=True
    )
    customer_name = models.CharField(max_length=255)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=50, blank=True)
    street = models.CharField(max_length=255)
    street2 = models.CharField(max_length=255, blank=True)
    city = models.CharField(max_length=120)
    region = models.CharField(max_length=120, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    country = models.CharField(max_length=2, blank=True)
    summary = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    priority = models.CharField(
        max_length=8, choices=Job.Priority.choices, default=Job.Priority.NORMAL
    )
    scheduled_start = models.DateTimeField(null=True, blank=True)
    scheduled_end = models.DateTimeField(null=True, blank=True)
    options = models.JSONField(default=dict, blank=True)
    external_job_id = models.CharField(max_length=255, blank=True)
    outbox_event = models.OneToOneField(
        "sync.OutboxEvent",
        on_delete=models.SET_NULL,
        related_name="booking",
        null=True,
        blank=True,
    )
    created_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, related_name="+", null=True, blank=True
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(scheduled_end__isnull=True)
                | Q(scheduled_start__isnull=True)
                | Q(scheduled_end__gte=models.F("scheduled_start")),
                name="portal_booking_schedule_order",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference}: {self.summary}"


class AuditLog(models.Model):
    """Who did what to which object, with the state before and after. Kept in `portal` (not
    `sync`) because every app writes it in its own transactions, and `portal` is the app every
    other one may import."""

    company = models.ForeignKey(
        Company, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="audit_entries"
    )
    action = models.CharField(max_length=80)
    target_type = models.CharField(max_length=80)
    target_id = models.CharField(max_length=64)
    target_repr = models.CharField(max_length=255, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["target_type", "target_id"])]

    def __str__(self) -> str:
        return f"{self.action} {self.target_type}:{self.target_id}"


class ApiToken(models.Model):
    """A per-user API token for programmatic consumers. Only a SHA-256 digest of the secret is
    stored, with a short public prefix to find it by; the plain token is shown once."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=120, help_text="What the token is for.")
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} (fb_{self.prefix}…)"
