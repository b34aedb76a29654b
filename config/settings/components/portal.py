"""The client portal: sign-in throttling and invitation links."""

from config.env import env

# Failed sign-ins allowed per email address and per client IP before sign-in is refused
# (even with the right password) for LOGIN_LOCKOUT_SECONDS.
LOGIN_FAILURES_PER_ACCOUNT = env.int("LOGIN_FAILURES_PER_ACCOUNT", default=5)
LOGIN_FAILURES_PER_IP = env.int("LOGIN_FAILURES_PER_IP", default=20)
LOGIN_LOCKOUT_SECONDS = env.int("LOGIN_LOCKOUT_SECONDS", default=15 * 60)
# Invitation and password-reset links expire after this many seconds (Django's setting).
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT", default=3 * 24 * 3600)
# Proxies in front of the web server that append to X-Forwarded-For (0: none, use
# REMOTE_ADDR). The sign-in throttle and the audit log use the address the outermost saw.
PORTAL_NUM_PROXIES = env.int("PORTAL_NUM_PROXIES", default=0)
