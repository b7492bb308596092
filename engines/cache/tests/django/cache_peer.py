"""Django's `cache` and `cached_db` session backends on Django's RedisCache, for sessionkit's
interop tests (engines/cache/tests/django_interop.rs, engines/cached_db/tests/django_interop.rs).

    python cache_peer.py CONFIG_JSON OP_JSON

CONFIG_JSON: {"engine": "cache" | "cached_db", "redis_url": ..., "key_prefix": ...,
"secret_key": ..., "sqlite_path": ... (cached_db)}. OP_JSON: {"op": "create", "data": {...}} |
{"op": "load", "key": ...} | {"op": "update", "key": ..., "data": {...}} |
{"op": "flush", "key": ...}. Prints one JSON line with the result.
"""

import json
import sys

import django
from django.conf import settings

CONFIG = json.loads(sys.argv[1])
settings.configure(
    USE_TZ=True,
    SECRET_KEY=CONFIG["secret_key"],
    INSTALLED_APPS=["django.contrib.sessions"],
    DATABASES={
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": CONFIG.get("sqlite_path") or ":memory:",
        }
    },
    CACHES={
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CONFIG["redis_url"],
            "KEY_PREFIX": CONFIG["key_prefix"],
        }
    },
    SESSION_ENGINE="django.contrib.sessions.backends." + CONFIG["engine"],
)
django.setup()

from importlib import import_module  # noqa: E402

SessionStore = import_module(settings.SESSION_ENGINE).SessionStore


def run(op):
    if op["op"] == "create":
        session = SessionStore()
        session.update(op["data"])
        session.save()
        return {"key": session.session_key, "expiry_age": session.get_expiry_age()}
    if op["op"] == "load":
        session = SessionStore(op["key"])
        data = session.load()
        return {"data": data, "exists": bool(session.exists(op["key"]))}
    if op["op"] == "update":
        session = SessionStore(op["key"])
        session.update(op["data"])
        session.save()
        return {"key": session.session_key}
    if op["op"] == "flush":
        session = SessionStore(op["key"])
        session.load()
        session.flush()
        return {}
    raise ValueError(op["op"])


print(json.dumps(run(json.loads(sys.argv[2]))))
