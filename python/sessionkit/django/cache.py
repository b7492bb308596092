"""``SESSION_ENGINE = "sessionkit.django.cache"``: sessions in ``CACHES[SESSION_CACHE_ALIAS]``
(LocMem in the engine's process memory, or Redis), through the sessionkit ``cache`` engine."""

from sessionkit.django._base import (
    NativeSessionStore,
    cache_settings,
    cache_settings_key,
    common_settings,
    common_settings_key,
)


class SessionStore(NativeSessionStore):
    """Django's cache session store, run by the sessionkit ``cache`` engine."""

    engine_name = "cache"
    #: Django's cache key prefix (the engine lays out cache keys the same way).
    cache_key_prefix = "django.contrib.sessions.cache"

    def __init__(self, session_key=None):
        cache_settings()
        super().__init__(session_key)

    @property
    def cache_key(self):
        return self.cache_key_prefix + self._get_or_create_session_key()

    @classmethod
    def settings_key(cls):
        return (common_settings_key(), cache_settings_key())

    @classmethod
    def engine_settings(cls):
        return {**common_settings(), **cache_settings()}
