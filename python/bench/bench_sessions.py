"""Django's own session backends against the sessionkit ones, in one process, one run.

    python bench/bench_sessions.py [--quick]

For each backend, three operations on one ``SessionStore`` per operation (as one request
would): load an existing session, modify+save it, create a new one. Prints a Markdown table of
microseconds per operation (best of 3 rounds) and the speed-up. Needs the package installed
(``pip install ./python``); the Redis rows need ``SESSIONKIT_TEST_REDIS_URL`` (unique key
prefixes; nothing is flushed).
"""

import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

QUICK = "--quick" in sys.argv
REDIS_URL = os.environ.get("SESSIONKIT_TEST_REDIS_URL")
WORK = Path(tempfile.mkdtemp(prefix="sessionkit-bench-"))
PREFIX = f"skbench-{uuid.uuid4().hex[:8]}"

# A logged-in session, as contrib.auth leaves it, plus a little application data.
DATA = {
    "_auth_user_id": "42",
    "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
    "_auth_user_hash": "b1946ac92492d2347c6235b4d2611184a51f6d5e8e3d8d2a6b2d3e4f5a6b7c8d",
    "cart": [101, 202, 303],
    "theme": "dark",
}


def configure():
    from django.conf import settings

    caches = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "bench"},
    }
    if REDIS_URL:
        caches["redis"] = {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": PREFIX,
        }
    settings.configure(
        SECRET_KEY="sessionkit-bench-secret",
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "django.contrib.sessions"],
        DATABASES={
            # Django's own db backend on its own file, in SQLite's defaults as Django opens it.
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(WORK / "django.sqlite3")}
        },
        # The sessionkit db engines on another file, in the engine's defaults (WAL,
        # synchronous=FULL): each side as it ships.
        SESSION_DB_URL=f"sqlite://{WORK / 'sessionkit.sqlite3'}",
        CACHES=caches,
        SESSION_FILE_PATH=str(WORK),
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", "sessions", verbosity=0)


def measure(make, op, rounds=3):
    """Best-of-rounds microseconds per call of ``op`` (on a fresh store from ``make``)."""
    n = 200 if QUICK else 1000
    best = float("inf")
    for _ in range(rounds):
        stores = [make() for _ in range(n)]
        start = time.perf_counter()
        for i, store in enumerate(stores):
            op(store, i)
        best = min(best, (time.perf_counter() - start) / n)
    return best * 1e6


def scenario(store_class, settings_overrides):
    from django.test import override_settings

    with override_settings(**settings_overrides):
        seed = store_class()
        seed.update(DATA)
        seed.save()
        key = seed.session_key

        def load(store, _):
            store.load()

        def modify_save(store, i):
            store["counter"] = i
            store.save()

        def create(store, _):
            store.update(DATA)
            store.save()

        return {
            "load": measure(lambda: store_class(key), load),
            "modify+save": measure(lambda: store_class(key), modify_save),
            "create": measure(store_class, create),
        }


def main():
    configure()
    from django.contrib.sessions.backends import cache as dj_cache
    from django.contrib.sessions.backends import cached_db as dj_cached_db
    from django.contrib.sessions.backends import db as dj_db
    from django.contrib.sessions.backends import file as dj_file
    from django.contrib.sessions.backends import signed_cookies as dj_cookies

    from sessionkit.django import cache as sk_cache
    from sessionkit.django import cached_db as sk_cached_db
    from sessionkit.django import db as sk_db
    from sessionkit.django import file as sk_file
    from sessionkit.django import signed_cookies as sk_cookies

    rows = [
        ("db (SQLite)", dj_db, sk_db, {}),
        ("cached_db (locmem + SQLite)", dj_cached_db, sk_cached_db, {}),
        ("cache (locmem)", dj_cache, sk_cache, {}),
    ]
    if REDIS_URL:
        rows.append(("cache (Redis)", dj_cache, sk_cache, {"SESSION_CACHE_ALIAS": "redis"}))
    rows += [
        ("file", dj_file, sk_file, {}),
        ("signed_cookies", dj_cookies, sk_cookies, {}),
    ]
    print(f"Django sessions, {'quick' if QUICK else 'full'} run, µs per operation (best of 3)\n")
    print("| backend | operation | Django | sessionkit | speed-up |")
    print("| --- | --- | ---: | ---: | ---: |")
    for label, django_module, ours_module, overrides in rows:
        theirs = scenario(django_module.SessionStore, overrides)
        ours = scenario(ours_module.SessionStore, overrides)
        for op in ("load", "modify+save", "create"):
            print(
                f"| {label} | {op} | {theirs[op]:.1f} | {ours[op]:.1f} | "
                f"{theirs[op] / ours[op]:.1f}× |",
                flush=True,
            )


if __name__ == "__main__":
    main()
