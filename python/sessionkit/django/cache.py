"""``SESSION_ENGINE = "sessionkit.django.cache"``: sessions in ``CACHES[SESSION_CACHE_ALIAS]``
(LocMem in the engine's process memory, or Redis), through the sessionkit ``cache`` engine."""

from sessionkit.django._base import (
    CacheAliasMixin,
    NativeSessionStore,
    cache_settings,
    cache_settings_key,
    common_settings,
    common_settings_key,
)


class SessionStore(CacheAliasMixin, NativeSessionStore):
    """Django's cache session store, run by the sessionkit ``cache`` engine."""

    engine_name = "cache"
    cache_key_prefix = "django.contrib.sessions.cache"

    @classmethod
    def settings_key(cls):
        return (common_settings_key(), cache_settings_key())

    @classmethod
    def engine_settings(cls):
        return {**common_settings(), **cache_settings()}
