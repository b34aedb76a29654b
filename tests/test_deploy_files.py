"""docker-compose.yml cannot run here (no Docker engine); check what can be checked."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_compose_runs_the_stack_from_one_image_with_exactly_one_beat():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "web", "worker", "beat"}
    app_services = [services[name] for name in ("web", "worker", "beat")]
    assert {s["build"] for s in app_services} == {"."}
    assert {s["image"] for s in app_services} == {"fieldbridge:latest"}
    assert "gunicorn config.wsgi:application" in services["web"]["command"]
    assert "celery -A config worker" in services["worker"]["command"]
    assert "-Q sync,outbox,webhooks,default" in services["worker"]["command"]
    assert services["beat"]["command"].startswith("celery -A config beat")
    assert services["beat"]["deploy"]["replicas"] == 1
    assert "/health/ready" in str(services["web"]["healthcheck"]["test"])


def test_dockerfile_installs_pinned_dependencies_and_runs_unprivileged():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "-c requirements/constraints.txt" in dockerfile
    assert "USER app" in dockerfile
    assert "collectstatic" in dockerfile
