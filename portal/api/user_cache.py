"""The signed-in user's row from the cache: `CachedModelBackend` (first in
AUTHENTICATION_BACKENDS) is Django's ModelBackend whose `get_user` — run by the auth
middleware on every request with a session, portal pages and the API alike — reads the user
from the default cache (Redis) instead of a query per request.

The cached copy is the model instance as the database returned it (pickled, no related
objects), kept `USER_CACHE_SECONDS`. Saving or deleting a user drops it (post_save /
post_delete, at once and again after the commit, connected by `ApiConfig.ready` in
portal/api/apps.py, so in every process: web, Celery, management commands), so a deactivated
user, a changed password (the session hash is checked against the cached row) or any other
change is read from the database on the next request. What the signals cannot see, a
queryset `.update()` of users (the code base has none) or a request that read the row just
before another committed a change and cached it just after the drop, lasts at most
`USER_CACHE_SECONDS`.

It replaces ModelBackend in AUTHENTICATION_BACKENDS (one backend: `login()` without a backend
argument needs that), so sessions signed in before it was deployed, which name ModelBackend,
are asked to sign in again once.
"""

from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache
from django.db import transaction

USER_CACHE_SECONDS = 60


def user_cache_key(user_id) -> str:
    return f"auth-user:v1:{user_id}"


class CachedModelBackend(ModelBackend):
    def get_user(self, user_id):
        key = user_cache_key(user_id)
        user = cache.get(key)
        if user is None:
            user = super().get_user(user_id)
            if user is not None:
                cache.set(key, user, USER_CACHE_SECONDS)
            return user
        return user if self.user_can_authenticate(user) else None


def user_cache_drop(sender, instance, **kwargs) -> None:
    key = user_cache_key(instance.pk)
    cache.delete(key)
    # Again once committed: a request may have cached the old row in between.
    transaction.on_commit(lambda: cache.delete(key), robust=True)


def user_cache_prime(sender, request, user, **kwargs) -> None:
    """On sign-in (after Django's last_login save dropped the entry): the row read once now,
    so the first request of the session needs no query either."""
    cache.delete(user_cache_key(user.pk))
    CachedModelBackend().get_user(user.pk)
