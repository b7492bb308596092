"""A stock Django project on SQLite; its sessionkit lines are SESSION_ENGINE and
SESSION_DB_URL.

The sessions get their own SQLite file (DEMO_SESSIONS_DB): Django's connection and the
engine's must not share one SQLite file in one process (two SQLite libraries, per-process
POSIX locks). A Rust process opens the same sessions file.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = os.environ.get("DEMO_SECRET_KEY", "demo-secret-key-not-for-production")
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "demo_site.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
_db = os.environ.get("DEMO_DB", str(BASE_DIR / "demo.sqlite3"))
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": _db,
        "TEST": {"NAME": _db},
    }
}
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

SESSION_ENGINE = "sessionkit.django.db"
SESSION_DB_URL = "sqlite://" + os.environ.get(
    "DEMO_SESSIONS_DB", str(BASE_DIR / "demo-sessions.sqlite3")
)
