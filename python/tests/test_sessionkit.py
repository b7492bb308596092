"""Our tests of what Django's suite checks through Django's own objects (see DJANGO_TESTS.md),
and of the parts sessionkit adds: run by django_suite.py in the same configured process."""

import os
import uuid

from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.backends.db import SessionStore as DjangoDBStore
from django.contrib.sessions.models import Session
from django.core.exceptions import ImproperlyConfigured
from django.test import SimpleTestCase, TransactionTestCase, override_settings

from sessionkit.django import account_db, cache, cached_db, db, signed_cookies
from sessionkit.django._base import url_for_database

REDIS_URL = os.environ.get("SESSIONKIT_TEST_REDIS_URL")


def _locmem(name):
    return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": name}


class CacheEngineTests(SimpleTestCase):
    """What CacheSessionTests checks through ``caches[...]``, checked through the engine."""

    def test_saved_session_is_in_the_engines_cache(self):
        # test_default_cache / test_create_and_save: after save the entry is stored.
        session = cache.SessionStore()
        session.create()
        session["a"] = 1
        session.save()
        self.assertIs(cache.SessionStore().exists(session.session_key), True)
        self.assertEqual(cache.SessionStore(session.session_key).load(), {"a": 1})
        session.delete()
        self.assertIs(cache.SessionStore().exists(session.session_key), False)

    @override_settings(
        CACHES={"default": _locmem("sk-default"), "sessions": _locmem("sk-sessions")},
        SESSION_CACHE_ALIAS="sessions",
    )
    def test_non_default_cache_alias_is_used(self):
        # test_non_default_cache: the entry is in the "sessions" cache, not the default one.
        session = cache.SessionStore()
        session["a"] = 1
        session.save()
        self.assertIs(cache.SessionStore().exists(session.session_key), True)
        with override_settings(SESSION_CACHE_ALIAS="default"):
            self.assertIs(cache.SessionStore().exists(session.session_key), False)
        session.delete()

    @override_settings(CACHES={"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}})
    def test_unsupported_cache_backend_is_improperly_configured(self):
        with self.assertRaisesMessage(ImproperlyConfigured, "DummyCache"):
            cache.SessionStore().exists("a" * 32)

    def test_redis_cache(self):
        if not REDIS_URL:
            self.skipTest("SESSIONKIT_TEST_REDIS_URL is not set (no Redis to test against)")
        caches = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": REDIS_URL,
                "KEY_PREFIX": f"sk-py-{uuid.uuid4().hex}",
            }
        }
        with override_settings(CACHES=caches):
            session = cache.SessionStore()
            session["user"] = "ada"
            session.save()
            other = cache.SessionStore(session.session_key)
            self.assertEqual(other["user"], "ada")
            other.delete()
            session["user"] = "bob"
            with self.assertRaises(UpdateError):
                session.save()


class CachedDbFailingCacheTests(TransactionTestCase):
    """What test_cache_set_failure_non_fatal checks with Django's failing cache class: a cache
    that cannot be written does not fail the save, and the row is stored."""

    @override_settings(
        CACHES={
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                # Nothing listens on port 1: every cache call fails fast.
                "LOCATION": "redis://127.0.0.1:1/0",
                "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
            }
        }
    )
    def test_cache_set_failure_non_fatal(self):
        session = cached_db.SessionStore()
        session["key"] = "val"
        session.save()
        row = Session.objects.get(session_key=session.session_key)
        self.assertEqual(row.get_decoded(), {"key": "val"})


class DjangoInteropTests(TransactionTestCase):
    """Django's own db backend and the sessionkit one read each other's rows."""

    def test_django_reads_sessionkit_and_back(self):
        ours = db.SessionStore()
        ours["from"] = "sessionkit"
        ours.set_expiry(600)
        ours.save()
        theirs = DjangoDBStore(ours.session_key)
        self.assertEqual(theirs["from"], "sessionkit")
        self.assertEqual(theirs.get_expiry_age(), 600)
        theirs["from"] = "django"
        theirs.save()
        self.assertEqual(db.SessionStore(ours.session_key)["from"], "django")

    def test_tampered_row_logs_suspicious_session_and_reads_empty(self):
        ours = db.SessionStore()
        ours["user"] = 1
        ours.save()
        row = Session.objects.get(session_key=ours.session_key)
        payload, timestamp, signature = row.session_data.rsplit(":", 2)
        flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
        row.session_data = f"{payload}:{timestamp}:{flipped}"
        row.save()
        with self.assertLogs("django.security.SuspiciousSession", "WARNING") as logs:
            self.assertEqual(db.SessionStore(ours.session_key).load(), {})
        self.assertIn("Session data corrupted", logs.output[0])

    def test_secret_key_fallbacks_verify_old_rows(self):
        with override_settings(SECRET_KEY="old-secret"):
            ours = db.SessionStore()
            ours["x"] = 1
            ours.save()
        with override_settings(SECRET_KEY="new-secret", SECRET_KEY_FALLBACKS=["old-secret"]):
            self.assertEqual(db.SessionStore(ours.session_key)["x"], 1)
        with override_settings(SECRET_KEY="new-secret"):
            self.assertEqual(db.SessionStore(ours.session_key).load(), {})


class AccountDbTests(TransactionTestCase):
    """account_db's own table and its account index ("log out everywhere")."""

    def test_log_out_everywhere_but_here(self):
        stores = []
        for _ in range(3):
            store = account_db.SessionStore()
            store["_auth_user_id"] = "7"
            store.save()
            stores.append(store)
        other = account_db.SessionStore()
        other["_auth_user_id"] = "8"
        other.save()
        keys = sorted(account_db.SessionStore.session_keys_of_account(7))
        self.assertEqual(keys, sorted(s.session_key for s in stores))
        here = stores[0].session_key
        self.assertEqual(account_db.SessionStore.delete_sessions_of_account(7, keep=here), 2)
        self.assertEqual(account_db.SessionStore.session_keys_of_account(7), [here])
        self.assertEqual(account_db.SessionStore(here)["_auth_user_id"], "7")
        self.assertIs(account_db.SessionStore().exists(stores[1].session_key), False)
        self.assertEqual(account_db.SessionStore.session_keys_of_account(8), [other.session_key])
        for store in (stores[0], other):
            store.delete()


class SettingsMappingTests(SimpleTestCase):
    """``DATABASES["default"]`` → the engine's URL, else ``SESSION_DB_URL``."""

    def test_sqlite_is_never_shared_with_djangos_connection(self):
        database = {"ENGINE": "django.db.backends.sqlite3", "NAME": "/srv/app.sqlite3"}
        with self.assertRaisesMessage(ImproperlyConfigured, "POSIX locks"):
            url_for_database(database, None)
        with self.assertRaisesMessage(ImproperlyConfigured, "Django's own SQLite"):
            url_for_database(database, "sqlite:///srv/app.sqlite3")
        self.assertEqual(
            url_for_database(database, "sqlite:///srv/sessions.sqlite3"),
            "sqlite:///srv/sessions.sqlite3",
        )

    def test_postgresql(self):
        database = {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "app",
            "USER": "u",
            "PASSWORD": "p@ss",
            "HOST": "db.internal",
            "PORT": 5433,
        }
        self.assertEqual(
            url_for_database(database, None), "postgres://u:p%40ss@db.internal:5433/app"
        )
        with self.assertRaisesMessage(ImproperlyConfigured, "Unix-socket"):
            url_for_database({**database, "HOST": "/run/postgresql"}, None)

    def test_session_db_url_wins_and_unmappable_asks_for_it(self):
        database = {"ENGINE": "django.db.backends.mysql", "NAME": "app"}
        with self.assertRaisesMessage(ImproperlyConfigured, "SESSION_DB_URL"):
            url_for_database(database, None)
        self.assertEqual(
            url_for_database(database, "sqlite:///tmp/x.sqlite3"), "sqlite:///tmp/x.sqlite3"
        )


class SignedCookieTests(SimpleTestCase):
    def test_cookie_round_trip_and_tamper(self):
        session = signed_cookies.SessionStore()
        session["cart"] = [1, 2]
        session.save()
        self.assertEqual(signed_cookies.SessionStore(session.session_key)["cart"], [1, 2])
        tampered = session.session_key[:-1] + ("A" if session.session_key[-1] != "A" else "B")
        fresh = signed_cookies.SessionStore(tampered)
        self.assertEqual(fresh.load(), {})
        self.assertIs(fresh.modified, True)

    @override_settings(SESSION_COOKIE_AGE=-1)
    def test_cookie_older_than_max_age_is_refused(self):
        session = signed_cookies.SessionStore()
        session["a"] = 1
        session.save()
        self.assertEqual(signed_cookies.SessionStore(session.session_key).load(), {})


