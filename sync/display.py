"""How a provider's refusal by field (`OutboxEvent.field_errors`, {field: [messages]}) is shown
in the admin: one list item per field and message, escaped (the messages are the provider's
text)."""

from __future__ import annotations

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

MAX_SHOWN = 20


def field_errors_lines(errors: dict | None) -> list[tuple[str, str]]:
    """(field, message) pairs, "__all__" shown as "(whole request)"."""
    lines: list[tuple[str, str]] = []
    for field, messages in (errors or {}).items():
        label = "(whole request)" if field in ("__all__", "") else str(field)
        for message in messages if isinstance(messages, list) else [messages]:
            lines.append((label, str(message)))
    return lines[:MAX_SHOWN]


def field_errors_html(errors: dict | None) -> SafeString:
    lines = field_errors_lines(errors)
    if not lines:
        return mark_safe("")  # noqa: S308 - a constant
    items = format_html_join("", "<li><code>{}</code>: {}</li>", lines)
    return format_html('<ul class="field-errors" role="list">{}</ul>', items)


def field_errors_text(errors: dict | None) -> str:
    return "; ".join(f"{field}: {message}" for field, message in field_errors_lines(errors))
