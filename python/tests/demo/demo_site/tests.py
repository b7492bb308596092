"""The demo flows through Django's test client with SESSION_ENGINE = "sessionkit.django.db",
and the same sessions read and written by a Rust process (the `sessionkit` CLI) through the
same engine library."""

import json
import os
import subprocess
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client, TransactionTestCase

import sessionkit
from sessionkit.django.db import SessionStore


def rust_cli(*args):
    """Runs the Rust `sessionkit` CLI on this project's database with the engine library the
    Django process loaded."""
    cli = os.environ.get("SESSIONKIT_CLI")
    if not cli:
        raise AssertionError("SESSIONKIT_CLI (the Rust sessionkit binary) is not set")
    engine = Path(sessionkit.engine_library("db"))
    env = {
        "PATH": os.environ.get("PATH", ""),
        "SECRET_KEY": settings.SECRET_KEY,
        "SESSION_ENGINE": "db",
        "SESSION_DB_URL": settings.SESSION_DB_URL,
        "SESSIONKIT_ENGINE_PATH": str(engine.parent),
    }
    return subprocess.run([cli, *args], env=env, capture_output=True, text=True, timeout=60)


class DemoFlowTests(TransactionTestCase):
    def setUp(self):
        User.objects.create_user("ada", password="correct horse")
        self.client = Client()

    def test_engine_is_sessionkit(self):
        self.assertEqual(settings.SESSION_ENGINE, "sessionkit.django.db")
        self.assertTrue(sessionkit.engine_library("db").endswith("libsessionkit_engine_db.so"))

    def test_login_comment_logout(self):
        self.assertEqual(self.client.get("/").json(), {"user": None, "comments": []})
        response = self.client.post("/login", {"username": "ada", "password": "wrong"})
        self.assertEqual(response.status_code, 400)
        response = self.client.post("/login", {"username": "ada", "password": "correct horse"})
        self.assertEqual(response.status_code, 200)
        key = self.client.cookies[settings.SESSION_COOKIE_NAME].value
        self.assertEqual(SessionStore(key)["_auth_user_id"], str(User.objects.get().pk))

        self.client.post("/comment", {"text": "first!"})
        self.client.post("/comment", {"text": "second"})
        self.assertEqual(
            self.client.get("/").json(), {"user": "ada", "comments": ["first!", "second"]}
        )

        self.client.post("/logout")
        self.assertIs(SessionStore().exists(key), False)
        self.assertEqual(self.client.get("/").json(), {"user": None, "comments": []})

    def test_admin_login_page_uses_the_session(self):
        User.objects.create_superuser("root", password="admin pass")
        self.assertTrue(self.client.login(username="root", password="admin pass"))
        self.assertEqual(self.client.get("/admin/").status_code, 200)

    def test_rust_process_reads_the_django_login(self):
        self.client.post("/login", {"username": "ada", "password": "correct horse"})
        self.client.post("/comment", {"text": "written by Django"})
        key = self.client.cookies[settings.SESSION_COOKIE_NAME].value
        shown = rust_cli("session", "show", key)
        self.assertEqual(shown.returncode, 0, shown.stderr)
        record = json.loads(shown.stdout)
        self.assertEqual(record["session_key"], key)
        self.assertEqual(record["data"]["comments"], ["written by Django"])
        self.assertEqual(record["data"]["_auth_user_id"], str(User.objects.get().pk))

        self.client.post("/logout")
        gone = rust_cli("session", "show", key)
        self.assertEqual(gone.returncode, 1, "the Rust process still sees a logged-out session")

    def test_django_reads_a_session_the_rust_process_created(self):
        created = rust_cli("session", "create", "--data", '{"comments": ["written by Rust"]}')
        self.assertEqual(created.returncode, 0, created.stderr)
        key = created.stdout.strip()
        self.client.cookies[settings.SESSION_COOKIE_NAME] = key
        self.assertEqual(self.client.get("/").json(), {"user": None, "comments": ["written by Rust"]})
        self.client.post("/comment", {"text": "and Django"})
        shown = json.loads(rust_cli("session", "show", key).stdout)
        self.assertEqual(shown["data"]["comments"], ["written by Rust", "and Django"])
