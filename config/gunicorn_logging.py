"""gunicorn's logger with webhook path tokens redacted from access log lines
(config/gunicorn.py `logger_class`; see config.logging)."""

from gunicorn.glogging import Logger

from config.logging import redact_paths


class RedactingLogger(Logger):
    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("r", "U"):  # the request line and the path
            if isinstance(atoms.get(key), str):
                atoms[key] = redact_paths(atoms[key])
        return atoms
