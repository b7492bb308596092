"""What every sessionkit ``SessionStore`` shares: engine settings from ``django.conf.settings``,
the opened engines and codecs, and Django's ``SessionBase`` storage methods run in Rust.

Only storage (``exists``, ``load``, ``create``, ``save``, ``delete``, ``clear_expired``) and
signing (``encode``, ``decode``) are replaced; every other ``SessionBase`` method, the async
twins included (Django runs them through ``sync_to_async``), is Django's own.
"""

import datetime
import json
import logging
import os
import threading
from urllib.parse import quote, unquote

from django.conf import settings
from django.contrib.sessions.backends.base import (
    VALID_KEY_CHARS,
    CreateError,
    SessionBase,
    UpdateError,
)
from django.core.cache.backends.base import InvalidCacheBackendError
from django.core.exceptions import ImproperlyConfigured
from django.utils.crypto import get_random_string

import sessionkit
from sessionkit import _native

# Outcomes of _native's decode/load (see src/lib.rs `Loaded`).
_MISSING, _FOUND, _BAD_SIGNATURE = 0, 1, 2

#: How many fresh keys ``create()`` tries before giving up (Django's cache backend uses the
#: same bound; its db and file backends loop forever).
CREATE_ATTEMPTS = 10_000

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_MICROSECOND = datetime.timedelta(microseconds=1)

_lock = threading.Lock()
_engines = {}
_codecs = {}
# (store class, its settings_key()) → engine: the per-store lookup, without building and
# serializing the engine settings each time.
_by_settings_key = {}


def native_engine(name, engine_settings):
    """The opened engine ``name`` for these settings: opened once per distinct settings and
    shared by every store (an engine holds the connection pool or the open cache)."""
    key = (name, json.dumps(engine_settings, sort_keys=True, default=str))
    engine = _engines.get(key)
    if engine is not None:
        return engine
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            try:
                library = sessionkit.engine_library(name)
                engine = _native.NativeEngine(library, key[1])
            except (LookupError, _native.ConfigError) as error:
                raise ImproperlyConfigured(f"sessionkit engine '{name}': {error}") from error
            _engines[key] = engine
    return engine


def close_engines():
    """Forgets every opened engine (each closes its connections once no store holds it)."""
    with _lock:
        _engines.clear()
        _by_settings_key.clear()


def codec(salt):
    """Django's signer for ``salt`` with the current ``SECRET_KEY`` and fallbacks."""
    secret = settings.SECRET_KEY
    fallbacks = tuple(getattr(settings, "SECRET_KEY_FALLBACKS", ()))
    key = (salt, secret, fallbacks)
    found = _codecs.get(key)
    if found is None:
        found = _codecs[key] = _native.Codec(salt, secret, list(fallbacks))
    return found


def common_settings_key():
    """What ``common_settings()`` depends on, cheaply."""
    return (settings.SECRET_KEY, settings.SESSION_COOKIE_AGE, settings.SESSION_COOKIE_NAME)


def database_settings_key():
    """What ``database_url()`` depends on, cheaply."""
    database = settings.DATABASES.get("default", {})
    return (
        getattr(settings, "SESSION_DB_URL", None),
        database.get("ENGINE"),
        database.get("NAME"),
        database.get("HOST"),
        database.get("PORT"),
        database.get("USER"),
        database.get("PASSWORD"),
        bool(database.get("OPTIONS")),
    )


def cache_settings_key():
    """What ``cache_settings()`` depends on, cheaply."""
    alias = settings.SESSION_CACHE_ALIAS
    return (alias, repr(settings.CACHES.get(alias)))


def common_settings():
    """The settings every engine is opened with (Django's names)."""
    return {
        "SECRET_KEY": settings.SECRET_KEY,
        "SESSION_COOKIE_AGE": settings.SESSION_COOKIE_AGE,
        "SESSION_COOKIE_NAME": settings.SESSION_COOKIE_NAME,
    }


def database_url():
    """The db engines' database: ``SESSION_DB_URL`` when set, else ``DATABASES["default"]``
    when it maps cleanly (PostgreSQL over TCP).

    A SQLite ``DATABASES["default"]`` never maps: Django's connection and the engine's would be
    two SQLite libraries on one file in one process, and POSIX locks are per process, so
    neither sees the other's locks (closing Django's connection deletes the WAL the engine is
    still writing to). Give the sessions their own file with ``SESSION_DB_URL``, which must
    then not be Django's database file.
    """
    return url_for_database(
        settings.DATABASES.get("default", {}), getattr(settings, "SESSION_DB_URL", None)
    )


def url_for_database(database, explicit):
    """``database_url()`` for a ``DATABASES`` entry and a ``SESSION_DB_URL`` value (or None)."""
    backend = database.get("ENGINE", "")
    name = str(database.get("NAME") or "")
    if explicit:
        if backend == "django.db.backends.sqlite3" and name and _same_sqlite_file(explicit, name):
            raise ImproperlyConfigured(
                f"SESSION_DB_URL {explicit!r} is Django's own SQLite database: two SQLite "
                "libraries in one process cannot share a file safely; use another file"
            )
        return explicit
    if backend in (
        "django.db.backends.postgresql",
        "django.db.backends.postgresql_psycopg2",
    ):
        host = database.get("HOST") or ""
        if host and not host.startswith("/") and not database.get("OPTIONS"):
            user = quote(str(database.get("USER") or ""), safe="")
            password = quote(str(database.get("PASSWORD") or ""), safe="")
            credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
            port = f":{database['PORT']}" if database.get("PORT") else ""
            return f"postgres://{credentials}{host}{port}/{quote(name, safe='')}"
        reason = "a Unix-socket host or OPTIONS do not map to a URL"
    elif backend == "django.db.backends.sqlite3":
        reason = (
            "SQLite cannot be shared by Django's connection and the engine's in one process "
            "(POSIX locks are per process); give the sessions their own file"
        )
    else:
        reason = f"ENGINE {backend!r} has no sessionkit URL"
    raise ImproperlyConfigured(
        f"sessionkit db engines: DATABASES['default'] cannot be used ({reason}); "
        "set SESSION_DB_URL (sqlite:///abs/sessions.sqlite3 or postgres://user:pass@host/db)"
    )


def _same_sqlite_file(url, name):
    if not url.startswith("sqlite://"):
        return False
    path = unquote(url[len("sqlite://"):].split("?", 1)[0])
    try:
        return os.path.samefile(path, name)
    except OSError:
        return os.path.abspath(path) == os.path.abspath(name)


def cache_settings():
    """``CACHES`` (just the ``SESSION_CACHE_ALIAS`` entry) and the alias, for the cache engines.

    Raises ``InvalidCacheBackendError`` for an alias ``CACHES`` lacks, as Django's do.
    """
    alias = settings.SESSION_CACHE_ALIAS
    try:
        entry = settings.CACHES[alias]
    except KeyError:
        raise InvalidCacheBackendError(f"The connection '{alias}' doesn't exist.") from None
    return {"CACHES": {alias: dict(entry)}, "SESSION_CACHE_ALIAS": alias}


def micros(moment):
    """Unix microseconds of a datetime (naive ones are local time, as ``timezone.now()`` gives
    them with ``USE_TZ = False``)."""
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return (moment - _EPOCH) // _MICROSECOND


class NativeSessionStore(SessionBase):
    """A ``SessionBase`` whose storage and signing run in a sessionkit engine library."""

    #: The engine library's short name (``libsessionkit_engine_<name>.so``).
    engine_name = None

    @classmethod
    def engine_settings(cls):
        """The Django settings (by name) this store's engine is opened with."""
        return common_settings()

    @classmethod
    def settings_key(cls):
        """A cheap, hashable digest of every setting ``engine_settings()`` reads: equal keys
        mean equal engine settings."""
        return common_settings_key()

    @classmethod
    def native_engine(cls):
        """The opened engine for the current settings."""
        key = (cls, cls.settings_key())
        engine = _by_settings_key.get(key)
        if engine is None:
            engine = native_engine(cls.engine_name, cls.engine_settings())
            _by_settings_key[key] = engine
        return engine

    def _engine(self):
        # Once per store (a store lives for one request): settings are read when it is first
        # used, so a store follows override_settings like Django's own do.
        engine = self.__dict__.get("_native_engine")
        if engine is None:
            engine = self.__dict__["_native_engine"] = self.native_engine()
        return engine

    def _codec(self):
        return codec(self.key_salt)

    def _dumps(self, session_dict):
        return self.serializer().dumps(session_dict)

    def _loaded(self, outcome, text):
        """The session dict for a decode outcome, as Django's ``decode`` answers."""
        if outcome == _FOUND:
            try:
                return self.serializer().loads(text.encode("latin-1"))
            except Exception:
                # Django: ValueError and the like give an empty session, silently.
                return {}
        if outcome == _BAD_SIGNATURE:
            logging.getLogger("django.security.SuspiciousSession").warning(
                "Session data corrupted"
            )
        return {}

    def encode(self, session_dict):
        "Return the given session dictionary serialized and encoded as a string."
        return self._codec().encode(self._dumps(session_dict))

    def decode(self, session_data):
        outcome, text = self._codec().decode(session_data)
        return self._loaded(outcome, text)

    def exists(self, session_key):
        if not session_key:
            return False
        return self._engine().exists(session_key)

    def load(self):
        if self.session_key is None:
            return {}
        outcome, text = self._engine().load(self._codec(), self.session_key)
        if outcome == _MISSING:
            self._session_key = None
            return {}
        return self._loaded(outcome, text)

    def create(self):
        # A fresh key per attempt, stored with must_create: the engine's create is atomic, so
        # Django's extra exists() round trip before it is not needed.
        for _ in range(CREATE_ATTEMPTS):
            self._session_key = get_random_string(32, VALID_KEY_CHARS)
            try:
                self.save(must_create=True)
            except CreateError:
                continue
            self.modified = True
            return
        raise RuntimeError(
            "Unable to create a new session key. It is likely that the session store is "
            "unavailable."
        )

    def save(self, must_create=False):
        if self.session_key is None:
            return self.create()
        data = self._get_session(no_load=must_create)
        try:
            self._engine().write(
                self._codec(),
                self.session_key,
                self._dumps(data),
                micros(self.get_expiry_date()),
                must_create,
            )
        except _native.SessionExists:
            raise CreateError
        except _native.SessionNotFound:
            raise UpdateError

    def delete(self, session_key=None):
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        self._engine().delete(session_key)

    @classmethod
    def clear_expired(cls):
        cls.native_engine().clear_expired()


class CacheAliasMixin:
    """What the cache-backed stores share with Django's: the alias is resolved at construction
    (``InvalidCacheBackendError``), and ``cache_key`` is Django's key layout, which the engine
    uses too."""

    #: Django's key prefix for this kind of store.
    cache_key_prefix = None

    def __init__(self, session_key=None):
        cache_settings()
        super().__init__(session_key)

    @property
    def cache_key(self):
        return self.cache_key_prefix + self._get_or_create_session_key()
