"""The 32-concurrent-requests run against real Django, for the comparison in BENCHMARKS.md.

32 threads play 32 concurrent requests of one visitor: each loads the session, waits until all
have loaded (the worst case, made certain), then adds its own key and saves — what
`SessionMiddleware` does at the end of a request. A second round increments one counter the same
way (`session["visits"] += 1`). Django saves the whole session each time, so the last writer
wins; this prints how many of the 32 keys and increments Django keeps, per backend.

Run with the test virtualenv (Django 5.2):
    $SESSIONKIT_DJANGO_VENV/bin/python scripts/django_concurrent_writes.py
"""

import os
import tempfile
import threading
from importlib import import_module

import django
from django.conf import settings

REQUESTS = 32
work = tempfile.mkdtemp(prefix="django-concurrency-")
settings.configure(
    SECRET_KEY="django-concurrency-comparison",
    INSTALLED_APPS=["django.contrib.sessions"],
    DATABASES={
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.path.join(work, "db.sqlite3"),
            "OPTIONS": {"timeout": 30},
        }
    },
    SESSION_FILE_PATH=work,
    USE_TZ=True,
)
django.setup()
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

call_command("migrate", verbosity=0)
connection.close()


def race(store_class, key, change):
    loaded = threading.Barrier(REQUESTS)

    def request(n):
        from django.db import connection as thread_connection

        session = store_class(key)
        session["seed"]  # loads it, as a request reading its session does
        loaded.wait()
        change(session, n)
        session.save()
        thread_connection.close()

    threads = [threading.Thread(target=request, args=(n,)) for n in range(REQUESTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def add_note(session, n):
    session[f"note_{n}"] = n


def increment(session, n):
    session["visits"] = session.get("visits", 0) + 1


for backend in ["db", "cache", "file", "cached_db"]:
    store_class = import_module(f"django.contrib.sessions.backends.{backend}").SessionStore
    first = store_class()
    first["seed"] = True
    first.save()
    key = first.session_key
    race(store_class, key, add_note)
    after = store_class(key)
    kept = sum(1 for n in range(REQUESTS) if f"note_{n}" in after)
    race(store_class, key, increment)
    visits = store_class(key).get("visits")
    print(
        f"django {backend}: {kept} of {REQUESTS} concurrent writes kept; "
        f"{REQUESTS} concurrent increments -> {visits}"
    )
