"""``SESSION_ENGINE = "sessionkit.django.cached_db"``: ``django_session`` rows with a
write-through cache (``CACHES[SESSION_CACHE_ALIAS]``, LocMem or Redis), through the sessionkit
``cached_db`` engine."""

from sessionkit.django import db
from sessionkit.django._base import cache_settings, cache_settings_key


class SessionStore(db.SessionStore):
    """Django's cached_db session store, run by the sessionkit ``cached_db`` engine."""

    engine_name = "cached_db"
    #: Django's cached_db key prefix (the engine lays out cache keys the same way).
    cache_key_prefix = "django.contrib.sessions.cached_db"

    def __init__(self, session_key=None):
        # Django's cached_db resolves the cache alias here (InvalidCacheBackendError).
        cache_settings()
        super().__init__(session_key)

    @property
    def cache_key(self):
        return self.cache_key_prefix + self._get_or_create_session_key()

    @classmethod
    def settings_key(cls):
        return (super().settings_key(), cache_settings_key())

    @classmethod
    def engine_settings(cls):
        return {**super().engine_settings(), **cache_settings()}
