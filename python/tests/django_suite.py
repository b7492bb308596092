"""Django's own ``tests/sessions_tests`` run against the sessionkit ``SessionStore``s.

Usage: ``python tests/django_suite.py DJANGO_SOURCE_DIR`` (an unpacked Django 5.2 sdist).

Django's files are not edited: each of its test classes is subclassed here with ``backend``
(and the engine name its clearsessions test uses) pointed at a sessionkit store. Tests that
cannot apply to an engine holding its own storage are skipped here, each with the reason
written in ``python/DJANGO_TESTS.md``; the runner fails if the two lists disagree. Our own
tests of the same behaviour (``tests/test_sessionkit.py``) run in the same process.

Prints passed / failed / not applicable per class and exits non-zero on any failure.
"""

import os
import re
import sys
import tempfile
import unittest
from pathlib import Path
from urllib.parse import unquote, urlsplit

HERE = Path(__file__).resolve().parent
TABLE = HERE.parent / "DJANGO_TESTS.md"


def postgres_database(url):
    """Django's DATABASES entry for ``url`` (postgres://user[:pass]@host[:port]/db), with a
    test database of this run's own."""
    parts = urlsplit(url)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": parts.path.lstrip("/") or "postgres",
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "127.0.0.1",
        "PORT": parts.port or 5432,
        "TEST": {"NAME": f"test_sessionkit_py_{os.getpid()}"},
    }


def configure(django_source, workdir):
    """Settings for the suite: Django's ORM and the engine on one PostgreSQL database (each
    with its own connection, as two processes would be)."""
    sys.path.insert(0, str(Path(django_source) / "tests"))
    sys.path.insert(0, str(HERE))
    from django.conf import settings

    url = os.environ.get("SESSIONKIT_TEST_POSTGRES_URL")
    if not url:
        sys.exit(
            "SESSIONKIT_TEST_POSTGRES_URL is not set: the db tests need a PostgreSQL database "
            "that Django's ORM and the engine both open (SQLite cannot be shared by two SQLite "
            "libraries in one process)"
        )
    settings.configure(
        SECRET_KEY="sessionkit-django-suite-secret",
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django.contrib.sessions",
            "sessions_tests",
        ],
        DATABASES={"default": postgres_database(url)},
        CACHES={
            "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
        },
        # Django's test settings leave USE_TZ False (the *WithTimeZone classes turn it on);
        # UTC so naive times mean the same to Django's ORM and the engine.
        USE_TZ=False,
        TIME_ZONE="UTC",
        SESSION_ENGINE="sessionkit.django.db",
        SESSION_FILE_PATH=str(workdir),
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        ROOT_URLCONF=[],
        MIDDLEWARE=[],
    )
    import django

    django.setup()


def not_applicable_in_table():
    """``Class.test_name`` → reason, from DJANGO_TESTS.md's table."""
    rows = {}
    for line in TABLE.read_text().splitlines():
        match = re.match(r"^\|\s*`(\w+)\.(\w+)`\s*\|(.+)\|\s*$", line)
        if match:
            rows[f"{match[1]}.{match[2]}"] = match[3].strip()
    return rows


def release_engine_connections():
    """Closes what the engines hold on the test database, so Django can drop it: the opened
    engines are forgotten (their pools close when dropped), and any connection still open is
    ended by PostgreSQL."""
    import gc

    from django.db import connection

    from sessionkit.django import _base

    _base.close_engines()
    gc.collect()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    connection.close()


class CountingResult(unittest.TextTestResult):
    """Counts outcomes per test class."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.per_class = {}

    def _bump(self, test, outcome):
        name = type(test).__name__
        counts = self.per_class.setdefault(
            name,
            {"passed": 0, "failed": 0, "not applicable": 0, "skipped by Django": 0},
        )
        counts[outcome] += 1

    def addSuccess(self, test):
        super().addSuccess(test)
        self._bump(test, "passed")

    def addExpectedFailure(self, test, err):
        # Django's own @expectedFailure (CookieSessionTests.test_actual_expiry, #19201).
        super().addExpectedFailure(test, err)
        self._bump(test, "passed")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._bump(test, "failed")

    def addError(self, test, err):
        super().addError(test, err)
        if isinstance(test, unittest.TestCase):
            self._bump(test, "failed")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._bump(test, "failed")

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        outcome = "not applicable" if reason.startswith(NA_PREFIX) else "skipped by Django"
        self._bump(test, outcome)


NA_PREFIX = "not applicable to sessionkit: "


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with tempfile.TemporaryDirectory(prefix="sessionkit-suite-") as tmp:
        configure(sys.argv[1], Path(tmp))
        import suite_classes

        table = not_applicable_in_table()
        declared = suite_classes.NOT_APPLICABLE
        missing = sorted(set(declared) - set(table))
        extra = sorted(set(table) - set(declared))
        if missing or extra:
            print(f"DJANGO_TESTS.md and the runner disagree: only in the runner {missing}, "
                  f"only in DJANGO_TESTS.md {extra}")
            sys.exit(2)

        from django.test.utils import (
            setup_databases,
            setup_test_environment,
            teardown_databases,
            teardown_test_environment,
        )

        setup_test_environment()
        old_config = setup_databases(verbosity=0, interactive=False)
        try:
            loader = unittest.TestLoader()
            suite = unittest.TestSuite()
            for case in suite_classes.CLASSES:
                suite.addTests(loader.loadTestsFromTestCase(case))
            import test_sessionkit

            suite.addTests(loader.loadTestsFromModule(test_sessionkit))
            verbosity = 2 if os.environ.get("VERBOSE") else 1
            result = unittest.TextTestRunner(
                resultclass=CountingResult, verbosity=verbosity, stream=sys.stdout
            ).run(suite)
        finally:
            release_engine_connections()
            teardown_databases(old_config, verbosity=0)
            teardown_test_environment()

    import suite_classes

    for test, reason in result.skipped:
        print(f"skipped {type(test).__name__}.{test._testMethodName}: {reason}")
    django_classes = {case.__name__ for case in suite_classes.CLASSES}
    grand = dict.fromkeys(("passed", "failed", "not applicable", "skipped by Django"), 0)
    for title, names in (
        ("Django's sessions_tests", [n for n in result.per_class if n in django_classes]),
        ("ours (tests/test_sessionkit.py)", [n for n in result.per_class if n not in django_classes]),
    ):
        totals = {"passed": 0, "failed": 0, "not applicable": 0, "skipped by Django": 0}
        print(f"\n{title:45} {'passed':>7} {'failed':>7} {'n/a':>5} {'skipped':>8}")
        for name in names:
            counts = result.per_class[name]
            for outcome, count in counts.items():
                totals[outcome] += count
            print(
                f"{name:45} {counts['passed']:7} {counts['failed']:7} "
                f"{counts['not applicable']:5} {counts['skipped by Django']:8}"
            )
        print(
            f"{'total':45} {totals['passed']:7} {totals['failed']:7} "
            f"{totals['not applicable']:5} {totals['skipped by Django']:8}"
        )
        for outcome, count in totals.items():
            grand[outcome] += count
    print(
        f"\nsessions_tests: {grand['passed']} passed, {grand['failed']} failed, "
        f"{grand['not applicable'] + grand['skipped by Django']} skipped"
    )
    sys.exit(0 if result.wasSuccessful() and grand["failed"] == 0 else 1)


if __name__ == "__main__":
    main()
