"""A real Django 5.2 app for sessionkit's interop tests, driven over a pipe.

The Rust tests start one peer per Django configuration (tests/common/mod.rs, `DjangoPeer`) and
talk to it while they run the `sessionkit` command line against the same database, directory or
cookies. Configuration comes from the environment variable SK_PEER_CONFIG, a JSON object:

    {"settings": {...Django settings...},
     "database_url": "sqlite:///abs/path" | "postgres://..." | "mysql://..."}

Then every line on stdin is one request, {"op": NAME, ...arguments}, and every reply is one line
on stdout: {"ok": result} or {"error": traceback}. Stdout carries nothing else; Django's own
output goes to stderr.
"""

import contextlib
import datetime
import json
import os
import sys
import traceback
import zlib
from importlib import import_module
from unittest import mock
from urllib.parse import parse_qsl, unquote, urlsplit

import django
from django.conf import settings


def databases(url):
    """Django's DATABASES for a sessionkit-style database URL (None: in-memory SQLite)."""
    if not url:
        return {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": unquote(parts.path)}}
    if parts.scheme in ("postgres", "postgresql"):
        return {
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": unquote(parts.path.lstrip("/")),
                "USER": unquote(parts.username or ""),
                "PASSWORD": unquote(parts.password or ""),
                "HOST": parts.hostname or "",
                "PORT": str(parts.port or ""),
                "OPTIONS": dict(parse_qsl(parts.query)),
            }
        }
    if parts.scheme in ("mysql", "mariadb"):
        # Django's MySQL backend (mysqlclient); sessionkit-only options stay out of OPTIONS.
        ours = {"call_timeout", "pool_size"}
        return {
            "default": {
                "ENGINE": "django.db.backends.mysql",
                "NAME": unquote(parts.path.lstrip("/")),
                "USER": unquote(parts.username or ""),
                "PASSWORD": unquote(parts.password or ""),
                "HOST": parts.hostname or "",
                "PORT": str(parts.port or ""),
                "OPTIONS": {k: v for k, v in parse_qsl(parts.query) if k not in ours},
            }
        }
    raise ValueError(f"unsupported database URL scheme {parts.scheme!r}")


CONFIG = json.loads(os.environ["SK_PEER_CONFIG"])
settings.configure(
    **{
        "USE_TZ": True,
        "INSTALLED_APPS": ["django.contrib.sessions"],
        "DATABASES": databases(CONFIG.get("database_url")),
        **CONFIG.get("settings", {}),
    }
)
django.setup()

from django.core import signing  # noqa: E402  (needs configured settings)
from django.core.management import call_command  # noqa: E402
from django.test.utils import override_settings  # noqa: E402


def store_class():
    return import_module(settings.SESSION_ENGINE).SessionStore


def frozen(now):
    """Django's clock (`time.time`, used by signing) stopped at `now`, or the real one."""
    if now is None:
        return contextlib.nullcontext()
    return mock.patch("time.time", return_value=float(now))


def signing_settings(secret_key=None, fallbacks=None):
    """Run with another SECRET_KEY / SECRET_KEY_FALLBACKS, as a reconfigured app would."""
    overrides = {}
    if secret_key is not None:
        overrides["SECRET_KEY"] = secret_key
    if fallbacks is not None:
        overrides["SECRET_KEY_FALLBACKS"] = fallbacks
    return override_settings(**overrides) if overrides else contextlib.nullcontext()


def iso(value):
    return value.isoformat() if isinstance(value, datetime.datetime) else value


def op_migrate():
    call_command("migrate", "sessions", verbosity=0)


def op_create(data, expiry=None, now=None):
    """A new session holding `data`, saved by the configured SessionStore.

    `expiry` is passed to set_expiry: an int (seconds), an ISO string (parsed to an aware
    datetime first, as a view would pass a datetime) or null (no set_expiry call)."""
    with frozen(now):
        session = store_class()()
        session.update(data)
        if isinstance(expiry, str):
            session.set_expiry(datetime.datetime.fromisoformat(expiry))
        elif expiry is not None:
            session.set_expiry(expiry)
        session.save()
        return {"key": session.session_key, "expiry_date": session.get_expiry_date().isoformat()}


def op_load(key, now=None):
    """What the configured SessionStore(key) sees: its data, key and expiry after loading."""
    with frozen(now):
        session = store_class()(key)
        data = dict(session.items())
        return {
            "data": data,
            "session_key": session.session_key,
            # Loading marks a session modified only when it failed and Django created a new one.
            "modified": session.modified,
            "expiry_date": session.get_expiry_date().isoformat(),
            "expiry_age": session.get_expiry_age(),
        }


def op_update(key, data):
    """Load a session, add `data` and save it again (re-signing it with today's SECRET_KEY)."""
    session = store_class()(key)
    session.update(data)
    session.save()


def op_row(key):
    """The db backend's django_session row, as Django's ORM reads it."""
    from django.contrib.sessions.models import Session

    row = Session.objects.filter(pk=key).values("session_data", "expire_date").first()
    if row is None:
        return None
    return {"session_data": row["session_data"], "expire_date": row["expire_date"].isoformat()}


def storage_prefix():
    store = store_class()
    return store._get_storage_path(), settings.SESSION_COOKIE_NAME


def op_keys():
    """Every stored session key: rows of django_session, or session files in the directory."""
    if settings.SESSION_ENGINE.endswith(".file"):
        path, prefix = storage_prefix()
        return sorted(n[len(prefix):] for n in os.listdir(path) if n.startswith(prefix))
    from django.contrib.sessions.models import Session

    return sorted(Session.objects.values_list("pk", flat=True))


def op_file(key):
    """A session file as the file backend judges it, without loading (which may delete it)."""
    store = store_class()(key)
    path = store._key_to_file()
    if not os.path.exists(path):
        return None
    with open(path, encoding="ascii") as f:
        contents = f.read()
    data = store.decode(contents)
    return {
        "mtime_ns": os.stat(path).st_mtime_ns,
        "data": data,
        # `_session_expiry or (mtime + SESSION_COOKIE_AGE)`: a datetime, or the raw int/ISO value.
        "django_expiry": iso(store._expiry_date(data)),
    }


def op_set_mtime(key, unix):
    path = store_class()(key)._key_to_file()
    os.utime(path, (unix, unix))


def op_clearsessions():
    call_command("clearsessions")


def op_dumps(value, salt, timestamp, compress=True, secret_key=None):
    """signing.dumps at a frozen time, with the JSON and zlib sizes Django compared."""
    with frozen(timestamp), signing_settings(secret_key):
        data = signing.dumps(value, salt=salt, compress=compress)
    raw = json.dumps(value, separators=(",", ":")).encode("latin-1")
    return {"data": data, "json_len": len(raw), "zlib_len": len(zlib.compress(raw))}


def op_loads(data, salt, max_age=None, now=None, secret_key=None, fallbacks=None):
    """signing.loads; a refusal is reported with the exception's class name."""
    with frozen(now), signing_settings(secret_key, fallbacks):
        try:
            return {"value": signing.loads(data, salt=salt, max_age=max_age)}
        except Exception as error:  # noqa: BLE001  (the test asserts which class it was)
            return {"refused": type(error).__name__, "message": str(error)}


def op_timestamp(data):
    """The signing time carried by a signed value (base62 between the last two colons)."""
    return signing.b62_decode(data.rsplit(":", 2)[-2])


OPS = {name[3:]: fn for name, fn in globals().items() if name.startswith("op_")}


def main():
    for line in sys.stdin:
        request = json.loads(line)
        op = request.pop("op")
        try:
            reply = {"ok": OPS[op](**request)}
        except Exception:  # noqa: BLE001  (reported to the Rust side, which fails the test)
            reply = {"error": f"{op}: {traceback.format_exc()}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


main()
