"""The portal's API: companies (for their staff), clients, contacts, staff and jobs. Every
view starts from a visibility selector; anything outside it is a 404."""

from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.api import filters
from portal.api.fields import SyncedOutputSerializer
from portal.api.mixins import CompanyScopedApiMixin
from portal.api.pagination import get_paginated_response
from portal.api.selectors import contact_list_visible_to, staff_list_visible_to
from portal.models import Attachment, Client, Contact, Job, JobActivity, JobMaterial, Staff
from portal.selectors import client_list_visible_to, company_list_visible_to, job_list_visible_to


class CompanyOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The company's id.")
    name = serializers.CharField(help_text="The business's name.")
    slug = serializers.SlugField(help_text="A short unique name.")
    timezone = serializers.CharField(help_text="IANA time zone the business works in.")
    created_at = serializers.DateTimeField(help_text="When the company joined Fieldbridge.")
    updated_at = serializers.DateTimeField(help_text="When the company was last changed.")


class CompanyListApi(CompanyScopedApiMixin, APIView):
    class OutputSerializer(CompanyOutputSerializer):
        class Meta:
            ref_name = "Company"

    @extend_schema(
        operation_id="companies_list",
        summary="List the companies the caller works for (staff only; empty for client users)",
        responses=OutputSerializer(many=True),
    )
    def get(self, request):
        return get_paginated_response(
            pagination_class=self.pagination_class,
            serializer_class=self.OutputSerializer,
            queryset=company_list_visible_to(user=request.user),
            request=request,
            view=self,
        )


class CompanyDetailApi(CompanyScopedApiMixin, APIView):
    @extend_schema(
        operation_id="companies_retrieve",
        summary="One company the caller works for",
        responses=CompanyListApi.OutputSerializer,
    )
    def get(self, request, pk: int):
        company = self.get_visible_object(company_list_visible_to(user=request.user), pk=pk)
        return Response(CompanyListApi.OutputSerializer(company).data)


class ClientListApi(CompanyScopedApiMixin, APIView):
    class Filter(filters.ApiFilterSet):
        kind = filters.django_filters.ChoiceFilter(
            choices=Client.Kind.choices, help_text="Only clients of this kind."
        )
        updated_since = filters.DateTimeFilter(
            field_name="updated_at",
            lookup_expr="gte",
            help_text="Only clients changed at or after this time (ISO 8601).",
        )

        class Meta:
            model = Client
            fields = ["kind", "updated_since"]

    class OutputSerializer(SyncedOutputSerializer):
        name = serializers.CharField(help_text="The client's name.")
        kind = serializers.ChoiceField(
            choices=Client.Kind.choices, help_text="Residential, commercial or unknown."
        )
        email = serializers.CharField(help_text="Main email address (may be empty).")
        phone = serializers.CharField(help_text="Main phone number (may be empty).")
        address = serializers.CharField(help_text="Billing or main address (may be empty).")
        is_active = serializers.BooleanField(help_text="Whether the provider marks it active.")

        class Meta:
            ref_name = "Client"

    @extend_schema(
        operation_id="clients_list",
        summary="List clients",
        parameters=filters.filter_parameters(Filter),
        responses=OutputSerializer(many=True),
    )
    def get(self, request):
        clients = self.filter_queryset(client_list_visible_to(user=request.user), self.Filter)
        return get_paginated_response(
            pagination_class=self.pagination_class,
            serializer_class=self.OutputSerializer,
            queryset=clients,
            request=request,
            view=self,
        )


class ClientDetailApi(CompanyScopedApiMixin, APIView):
    @extend_schema(
        operation_id="clients_retrieve",
        summary="One client",
        responses=ClientListApi.OutputSerializer,
    )
    def get(self, request, pk: int):
        client = self.get_visible_object(client_list_visible_to(user=request.user), pk=pk)
        return Response(ClientListApi.OutputSerializer(client).data)


class ContactListApi(CompanyScopedApiMixin, APIView):
    class Filter(filters.ApiFilterSet):
        client = filters.IdFilter(field_name="client_id", help_text="Only this client's contacts.")
        updated_since = filters.DateTimeFilter(
            field_name="updated_at",
            lookup_expr="gte",
            help_text="Only contacts changed at or after this time (ISO 8601).",
        )

        class Meta:
            model = Contact
            fields = ["client", "updated_since"]

    class OutputSerializer(SyncedOutputSerializer):
        client_id = serializers.IntegerField(
            allow_null=True, help_text="The client this person belongs to, if any."
        )
        first_name = serializers.CharField(help_text="First name (may be empty).")
        last_name = serializers.CharField(help_text="Last name (may be empty).")
        email = serializers.CharField(help_text="Email address (may be empty).")
        phone = serializers.CharField(help_text="Phone number (may be empty).")
        mobile = serializers.CharField(help_text="Mobile number (may be empty).")
        role = serializers.CharField(help_text="Their role at the client (may be empty).")
        is_primary = serializers.BooleanField(help_text="The client's primary contact.")

        class Meta:
            ref_name = "Contact"

    @extend_schema(
        operation_id="contacts_list",
        summary="List contacts",
        parameters=filters.filter_parameters(Filter),
        responses=OutputSerializer(many=True),
    )
    def get(self, request):
        contacts = self.filter_queryset(contact_list_visible_to(user=request.user), self.Filter)
        return get_paginated_response(
            pagination_class=self.pagination_class,
            serializer_class=self.OutputSerializer,
            queryset=contacts,
            request=request,
            view=self,
        )


class ContactDetailApi(CompanyScopedApiMixin, APIView):
    @extend_schema(
        operation_id="contacts_retrieve",
        summary="One contact",
        responses=ContactListApi.OutputSerializer,
    )
    def get(self, request, pk: int):
        contact = self.get_visible_object(contact_list_visible_to(user=request.user), pk=pk)
        return Response(ContactListApi.OutputSerializer(contact).data)


class StaffListApi(CompanyScopedApiMixin, APIView):
    class Filter(filters.ApiFilterSet):
        is_active = filters.django_filters.BooleanFilter(
            help_text="Only active (true) or inactive (false) staff."
        )
        updated_since = filters.DateTimeFilter(
            field_name="updated_at",
            lookup_expr="gte",
            help_text="Only staff changed at or after this time (ISO 8601).",
        )

        class Meta:
            model = Staff
            fields = ["is_active", "updated_since"]

    class OutputSerializer(SyncedOutputSerializer):
        kind = serializers.ChoiceField(
            choices=Staff.Kind.choices, help_text="Technician or other employee."
        )
        first_name = serializers.CharField(help_text="First name (may be empty).")
        last_name = serializers.CharField(help_text="Last name (may be empty).")
        email = serializers.CharField(help_text="Email address (may be empty).")
        phone = serializers.CharField(help_text="Phone number (may be empty).")
        title = serializers.CharField(help_text="Job title (may be empty).")
        is_active = serializers.BooleanField(help_text="Whether the provider marks them active.")

        class Meta:
            ref_name = "Staff"

    @extend_schema(
        operation_id="staff_list",
        summary="List the business's staff (company staff only; empty for client users)",
        parameters=filters.filter_parameters(Filter),
        responses=OutputSerializer(many=True),
    )
    def get(self, request):
        staff = self.filter_queryset(staff_list_visible_to(user=request.user), self.Filter)
        return get_paginated_response(
            pagination_class=self.pagination_class,
            serializer_class=self.OutputSerializer,
            queryset=staff,
            request=request,
            view=self,
        )


class StaffDetailApi(CompanyScopedApiMixin, APIView):
    @extend_schema(
        operation_id="staff_retrieve",
        summary="One staff member",
        responses=StaffListApi.OutputSerializer,
    )
    def get(self, request, pk: int):
        person = self.get_visible_object(staff_list_visible_to(user=request.user), pk=pk)
        return Response(StaffListApi.OutputSerializer(person).data)


JOB_INCLUDES = ("activities", "materials", "attachments")
INCLUDE_PARAMETER = OpenApiParameter(
    name="include",
    type=str,
    location=OpenApiParameter.QUERY,
    required=False,
    description="Related records to embed, comma-separated: "
    + ", ".join(JOB_INCLUDES)
    + ". Left out unless asked for.",
    pattern=r"^((activities|materials|attachments)(,(activities|materials|attachments))*)?$",
)


def job_includes(request) -> set[str]:
    raw = request.query_params.get("include", "")
    wanted = {part.strip() for part in raw.split(",") if part.strip()}
    unknown = wanted - set(JOB_INCLUDES)
    if unknown:
        raise ValidationError(
            {"include": [f"Unknown: {', '.join(sorted(unknown))}. Choose from {JOB_INCLUDES}."]}
        )
    return wanted


def job_prefetch(queryset, includes: set[str]):
    live = {"remote_deleted_at__isnull": True}
    if "activities" in includes:
        queryset = queryset.prefetch_related(
            Prefetch(
                "activities",
                queryset=JobActivity.objects.filter(**live).prefetch_related(
                    Prefetch("staff", queryset=Staff.objects.filter(**live))
                ),
            )
        )
    if "materials" in includes:
        queryset = queryset.prefetch_related(
            Prefetch("materials", queryset=JobMaterial.objects.filter(**live))
        )
    if "attachments" in includes:
        queryset = queryset.prefetch_related(
            Prefetch("attachments", queryset=Attachment.objects.filter(**live).order_by("id"))
        )
    return queryset


class JobActivityOutputSerializer(serializers.Serializer):
    class StaffRefSerializer(serializers.Serializer):
        id = serializers.IntegerField(help_text="The staff member's id.")
        name = serializers.CharField(source="__str__", help_text="Their name.")

        class Meta:
            ref_name = "JobActivityStaff"

    id = serializers.IntegerField(help_text="The visit's id.")
    external_id = serializers.CharField(help_text="The provider's id of the visit.")
    starts_at = serializers.DateTimeField(allow_null=True, help_text="Scheduled start.")
    ends_at = serializers.DateTimeField(allow_null=True, help_text="Scheduled end.")
    status = serializers.CharField(help_text="The provider's status of the visit.")
    notes = serializers.CharField(help_text="Notes on the visit (may be empty).")
    staff = StaffRefSerializer(many=True, help_text="Who is assigned to the visit.")

    class Meta:
        ref_name = "JobActivity"


class JobMaterialOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The material line's id.")
    name = serializers.CharField(help_text="What was used or supplied.")
    description = serializers.CharField(help_text="Details (may be empty).")
    quantity = serializers.DecimalField(max_digits=12, decimal_places=4, help_text="Quantity.")
    unit_price = serializers.DecimalField(max_digits=14, decimal_places=2, help_text="Unit price.")
    total = serializers.DecimalField(max_digits=14, decimal_places=2, help_text="Line total.")

    class Meta:
        ref_name = "JobMaterial"


class JobAttachmentOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The attachment's id.")
    file_name = serializers.CharField(help_text="The file's name.")
    content_type = serializers.CharField(help_text="Its MIME type (may be empty).")
    size_bytes = serializers.IntegerField(allow_null=True, help_text="Its size, if known.")
    created_at = serializers.DateTimeField(help_text="When Fieldbridge first synced it.")

    class Meta:
        ref_name = "JobAttachment"


class JobOutputSerializer(SyncedOutputSerializer):
    client_id = serializers.IntegerField(allow_null=True, help_text="The client, if any.")
    client_name = serializers.CharField(
        source="client.name", allow_null=True, default=None, help_text="The client's name."
    )
    number = serializers.CharField(help_text="The provider's job number (may be empty).")
    summary = serializers.CharField(help_text="A one-line description (may be empty).")
    description = serializers.CharField(help_text="The full description (may be empty).")
    status = serializers.ChoiceField(choices=Job.Status.choices, help_text="Normalized status.")
    provider_status = serializers.CharField(help_text="The provider's own status word.")
    priority = serializers.ChoiceField(choices=Job.Priority.choices, help_text="Priority.")
    category = serializers.CharField(help_text="Job type or category (may be empty).")
    address = serializers.CharField(help_text="Where the work is (may be empty).")
    scheduled_start = serializers.DateTimeField(allow_null=True, help_text="Scheduled start.")
    scheduled_end = serializers.DateTimeField(allow_null=True, help_text="Scheduled end.")
    completed_at = serializers.DateTimeField(allow_null=True, help_text="When it was completed.")
    revenue = serializers.DecimalField(
        max_digits=14, decimal_places=2, help_text="The job's invoiced or quoted total."
    )
    activities = JobActivityOutputSerializer(
        many=True, required=False, help_text="Visits (only with include=activities)."
    )
    materials = JobMaterialOutputSerializer(
        many=True, required=False, help_text="Materials (only with include=materials)."
    )
    attachments = JobAttachmentOutputSerializer(
        many=True, required=False, help_text="File metadata (only with include=attachments)."
    )

    class Meta:
        ref_name = "Job"

    def to_representation(self, instance):
        includes = self.context.get("includes", set())
        for name in JOB_INCLUDES:
            if name not in includes:
                self.fields.pop(name, None)
        return super().to_representation(instance)


class JobListApi(CompanyScopedApiMixin, APIView):
    class Filter(filters.ApiFilterSet):
        client = filters.IdFilter(field_name="client_id", help_text="Only this client's jobs.")
        status = filters.django_filters.MultipleChoiceFilter(
            choices=Job.Status.choices, help_text="Only jobs in these statuses (repeatable)."
        )
        scheduled_from = filters.DateTimeFilter(
            field_name="scheduled_start",
            lookup_expr="gte",
            help_text="Only jobs scheduled to start at or after this time (ISO 8601).",
        )
        scheduled_to = filters.DateTimeFilter(
            field_name="scheduled_start",
            lookup_expr="lt",
            help_text="Only jobs scheduled to start before this time (ISO 8601).",
        )
        updated_since = filters.DateTimeFilter(
            field_name="updated_at",
            lookup_expr="gte",
            help_text="Only jobs changed at or after this time (ISO 8601).",
        )

        class Meta:
            model = Job
            fields = ["client", "status", "scheduled_from", "scheduled_to", "updated_since"]

    OutputSerializer = JobOutputSerializer

    @extend_schema(
        operation_id="jobs_list",
        summary="List jobs",
        parameters=[*filters.filter_parameters(Filter), INCLUDE_PARAMETER],
        responses=OutputSerializer(many=True),
    )
    def get(self, request):
        includes = job_includes(request)
        jobs = self.filter_queryset(job_list_visible_to(user=request.user), self.Filter)
        return get_paginated_response(
            pagination_class=self.pagination_class,
            serializer_class=self.OutputSerializer,
            queryset=job_prefetch(jobs, includes),
            request=request,
            view=self,
            context={"includes": includes},
        )


class JobDetailApi(CompanyScopedApiMixin, APIView):
    @extend_schema(
        operation_id="jobs_retrieve",
        summary="One job",
        parameters=[INCLUDE_PARAMETER],
        responses=JobOutputSerializer,
    )
    def get(self, request, pk: int):
        includes = job_includes(request)
        jobs = job_prefetch(job_list_visible_to(user=request.user), includes)
        job = self.get_visible_object(jobs, pk=pk)
        return Response(JobOutputSerializer(job, context={"includes": includes}).data)
