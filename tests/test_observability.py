import io
import json
import logging
import logging.config
import re
import uuid
from pathlib import Path

import sentry_sdk
from sentry_sdk.transport import Transport

from config.logging import request_id_var
from config.sentry import init_sentry

ROOT = Path(__file__).resolve().parent.parent


def test_sentry_events_carry_no_secrets():
    sent: list[dict] = []
    # Made at run time: source context lines sent with the event must not contain them either.
    secrets = [uuid.uuid4().hex for _ in range(4)]
    token = uuid.uuid4().hex

    class CapturingTransport(Transport):
        def capture_envelope(self, envelope):
            for item in envelope.items:
                if item.type == "event":
                    sent.append(json.loads(item.payload.get_bytes()))

    init_sentry(
        dsn="https://public@sentry.example.invalid/1",
        environment="test",
        release=None,
        traces_sample_rate=0.0,
        transport=CapturingTransport,
    )
    try:

        def connect(credentials, api_key, refresh_token):
            raise RuntimeError("provider said no")

        try:
            connect({"client_secret": secrets[0]}, secrets[1], secrets[2])
        except RuntimeError:
            with sentry_sdk.new_scope() as scope:
                # The admin's write-only field, as Django's integration would attach it.
                scope.set_extra("form", {"new_credentials": secrets[3], "name": "visible"})
                # A webhook request's URL holds the integration's secret path token.
                scope.set_extra("url", f"https://fb.example/webhooks/servicem8/7/{token}/")
                sentry_sdk.capture_exception()
        sentry_sdk.flush()
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.init()  # back to a disabled client for the rest of the session

    assert sent, "the event was not captured"
    dumped = json.dumps(sent)
    assert "provider said no" in dumped
    assert "[Filtered]" in dumped  # the frame's variables were there, and were scrubbed
    for secret in [*secrets, token]:
        assert secret not in dumped
    assert "/webhooks/servicem8/7/[redacted]/" in dumped


def test_production_logs_are_json_lines_with_the_request_id(settings):
    from config.settings.components.logging import LOGGING

    config = json.loads(json.dumps(LOGGING))
    config["handlers"]["console"]["formatter"] = "json"
    stream = io.StringIO()
    config["handlers"]["console"]["stream"] = stream
    logging.config.dictConfig(config)
    try:
        token = request_id_var.set("req-123456")
        logging.getLogger("fieldbridge.test").warning("sync started", extra={"integration_id": 7})
        request_id_var.reset(token)
    finally:
        logging.config.dictConfig(settings.LOGGING)
    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert line["message"] == "sync started"
    assert line["request_id"] == "req-123456"
    assert line["level"] == "WARNING"
    assert line["integration_id"] == 7


def test_env_example_documents_every_variable_the_code_reads():
    pattern = re.compile(r"""env(?:\.\w+)?\(\s*["']([A-Z][A-Z0-9_]+)["']""")
    read = set()
    for path in [*ROOT.glob("config/**/*.py"), *ROOT.glob("*/settings*.py")]:
        read |= set(pattern.findall(path.read_text()))
    documented = set(
        re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M)
    )
    assert read, "the scan found no variables"
    assert read - documented == set()
