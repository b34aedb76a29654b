from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The API's process-wide hooks (no models): the cached user rows' invalidation
    (portal.api.user_cache), connected in every process that may save a user."""

    name = "portal.api"
    label = "portal_api"
    verbose_name = "API"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.signals import user_logged_in
        from django.db.models.signals import post_delete, post_save

        from portal.api.user_cache import user_cache_drop, user_cache_prime

        user_model = get_user_model()
        post_save.connect(user_cache_drop, sender=user_model, dispatch_uid="portal.api.user_cache")
        post_delete.connect(
            user_cache_drop, sender=user_model, dispatch_uid="portal.api.user_cache_delete"
        )
        # After django.contrib.auth's update_last_login (its app is listed first).
        user_logged_in.connect(user_cache_prime, dispatch_uid="portal.api.user_cache_prime")
