"""``SESSION_ENGINE = "sessionkit.django.cached_db"``: ``django_session`` rows with a
write-through cache (``CACHES[SESSION_CACHE_ALIAS]``, LocMem or Redis), through the sessionkit
``cached_db`` engine."""

from sessionkit.django import db
from sessionkit.django._base import CacheAliasMixin, cache_settings, cache_settings_key


class SessionStore(CacheAliasMixin, db.SessionStore):
    """Django's cached_db session store, run by the sessionkit ``cached_db`` engine."""

    engine_name = "cached_db"
    cache_key_prefix = "django.contrib.sessions.cached_db"

    @classmethod
    def settings_key(cls):
        return (super().settings_key(), cache_settings_key())

    @classmethod
    def engine_settings(cls):
        return {**super().engine_settings(), **cache_settings()}
