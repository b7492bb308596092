"""Django's session test classes, re-pointed at the sessionkit ``SessionStore``s.

Imported by ``django_suite.py`` after settings are configured. Each class subclasses Django's
class of the same name and changes only which store (and engine module) it tests. Tests that
cannot apply are skipped with the reason from ``NOT_APPLICABLE`` (the same table is in
``python/DJANGO_TESTS.md``; the runner checks that they agree).
"""

import unittest

from django.test import override_settings
from sessions_tests import tests as django_tests

from sessionkit.django import cache, cached_db, db, file, signed_cookies

import custom_store

NA_PREFIX = "not applicable to sessionkit: "

# Why a test of Django's cannot apply to an engine that keeps its own storage; each has a test
# of ours showing the same behaviour (tests/test_sessionkit.py, named in DJANGO_TESTS.md).
_DJANGO_CACHE_OBJECT = (
    "reads the session from Django's cache object (caches[alias].get(cache_key)); the "
    "sessionkit cache engine keeps its entries in the engine's own cache, not Django's"
)
_FAILING_CACHE = (
    "patches CACHES with Django's failing cache class to fail cache writes; the cached_db "
    "engine's cache is inside the engine, so a Django cache class never sees the write"
)
NOT_APPLICABLE = {
    "CacheDBSessionTests.test_cache_set_failure_non_fatal": _FAILING_CACHE,
    "CacheDBSessionTests.test_cache_async_set_failure_non_fatal": _FAILING_CACHE,
    "CacheDBSessionWithTimeZoneTests.test_cache_set_failure_non_fatal": _FAILING_CACHE,
    "CacheDBSessionWithTimeZoneTests.test_cache_async_set_failure_non_fatal": _FAILING_CACHE,
    "CacheSessionTests.test_default_cache": _DJANGO_CACHE_OBJECT,
    "CacheSessionTests.test_non_default_cache": _DJANGO_CACHE_OBJECT,
    "CacheSessionTests.test_create_and_save": _DJANGO_CACHE_OBJECT,
    "CacheSessionTests.test_create_and_save_async": _DJANGO_CACHE_OBJECT,
}


def _without_transactions(cls):
    """Run a ``TestCase`` as a ``TransactionTestCase`` (rows committed, tables flushed after
    each test): the engine writes through its own connection, which cannot see rows inside
    the test's open transaction, nor the test see the engine's through a held snapshot."""
    cls._databases_support_transactions = classmethod(lambda klass: False)
    return cls


class DatabaseSessionTests(django_tests.DatabaseSessionTests):
    backend = db.SessionStore
    session_engine = "sessionkit.django.db"


@override_settings(USE_TZ=True)
class DatabaseSessionWithTimeZoneTests(DatabaseSessionTests):
    pass


class CustomDatabaseSessionTests(django_tests.CustomDatabaseSessionTests):
    """Django's custom-model tests against the ``account_db`` engine on the test app's
    ``CustomSession`` table (the engine fills ``account_id`` from ``_auth_user_id``)."""

    backend = custom_store.SessionStore
    session_engine = "custom_store"


class CacheDBSessionTests(django_tests.CacheDBSessionTests):
    backend = cached_db.SessionStore


@override_settings(USE_TZ=True)
class CacheDBSessionWithTimeZoneTests(CacheDBSessionTests):
    pass


def _clearsessions_on_sessionkit_file(test):
    # Django's test pins SESSION_ENGINE to its own file backend for the command; the same test
    # body, with the command pointed at the sessionkit file engine.
    return override_settings(
        SESSION_ENGINE="sessionkit.django.file", SESSION_COOKIE_AGE=0
    )(test.__wrapped__)


class FileSessionTests(django_tests.FileSessionTests):
    backend = file.SessionStore
    test_clearsessions_command = _clearsessions_on_sessionkit_file(
        django_tests.FileSessionTests.test_clearsessions_command
    )


class FileSessionPathLibTests(django_tests.FileSessionPathLibTests):
    backend = file.SessionStore
    test_clearsessions_command = FileSessionTests.test_clearsessions_command


class CacheSessionTests(django_tests.CacheSessionTests):
    backend = cache.SessionStore


@override_settings(SESSION_ENGINE="sessionkit.django.db")
class SessionMiddlewareTests(django_tests.SessionMiddlewareTests):
    pass


class CookieSessionTests(django_tests.CookieSessionTests):
    backend = signed_cookies.SessionStore


class ClearSessionsCommandTests(django_tests.ClearSessionsCommandTests):
    pass


CLASSES = [
    DatabaseSessionTests,
    DatabaseSessionWithTimeZoneTests,
    CustomDatabaseSessionTests,
    CacheDBSessionTests,
    CacheDBSessionWithTimeZoneTests,
    FileSessionTests,
    FileSessionPathLibTests,
    CacheSessionTests,
    SessionMiddlewareTests,
    CookieSessionTests,
    ClearSessionsCommandTests,
]

for _case in CLASSES:
    if issubclass(_case, django_tests.TestCase):
        _without_transactions(_case)

for _name, _reason in NOT_APPLICABLE.items():
    _class_name, _test_name = _name.split(".")
    _case = globals()[_class_name]
    setattr(
        _case,
        _test_name,
        unittest.skip(NA_PREFIX + _reason)(getattr(_case, _test_name)),
    )
