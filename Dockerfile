# One image for web, worker and beat (docker-compose.yml picks the command).
FROM python:3.12-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=config.settings.production

WORKDIR /app

RUN groupadd --system app && useradd --system --gid app --home /app app

COPY pyproject.toml README.md ./
COPY requirements/constraints.txt requirements/constraints.txt
# Install the pinned runtime dependencies only (no dev tools in the image).
RUN pip install -c requirements/constraints.txt .

COPY . .

# collectstatic loads production settings, so it needs placeholder values at build time only.
RUN DJANGO_SECRET_KEY=build-only-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH \
    DJANGO_ALLOWED_HOSTS=build DATABASE_URL=sqlite:////tmp/build.sqlite3 \
    REDIS_URL=redis://localhost:6379/0 \
    FIELD_ENCRYPTION_KEYS=tUJvDsoZ2Xqf2iC7EO3P6A2yKXJ5WrLpbr3KytmRZ-E= \
    python manage.py collectstatic --noinput \
 && mkdir -p /app/var/prometheus/web /app/var/prometheus/worker /app/var/prometheus/beat \
 && chown -R app:app /app/var /app/staticfiles

# Prometheus multiprocess mode (config/metrics.py): each process group writes its own directory
# under var/prometheus/ (docker-compose.yml sets the worker's and beat's); /metrics adds them
# all up.
# gunicorn empties the web one at start (config/gunicorn.py).
ENV PROMETHEUS_MULTIPROC_DIR=/app/var/prometheus/web

USER app
EXPOSE 8000

CMD ["gunicorn", "config.wsgi:application", "--config", "config/gunicorn.py"]
