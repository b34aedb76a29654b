from integrations.models import Integration


def integration_health_list() -> list[dict]:
    """Every integration's status and last connection test, for /health/detailed (operators)."""
    rows = (
        Integration.objects.select_related("company")
        .defer("credentials")  # health never needs the secrets; don't decrypt them
        .order_by("company__slug", "provider", "id")
    )
    return [
        {
            "id": integration.id,
            "company": integration.company.slug,
            "provider": integration.provider,
            "environment": integration.environment,
            "enabled": integration.enabled,
            "status": integration.status,
            "last_test": {
                "ok": integration.last_test_ok,
                "message": integration.last_test_message,
                "at": integration.last_test_at.isoformat() if integration.last_test_at else None,
                "latency_ms": integration.last_test_latency_ms,
            },
        }
        for integration in rows
    ]
