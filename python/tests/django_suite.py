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

HERE = Path(__file__).resolve().parent
TABLE = HERE.parent / "DJANGO_TESTS.md"


def configure(django_source, workdir):
    """Settings for the suite: one SQLite file shared by Django's ORM and the engine."""
    sys.path.insert(0, str(Path(django_source) / "tests"))
    sys.path.insert(0, str(HERE))
    from django.conf import settings

    settings.configure(
        SECRET_KEY="sessionkit-django-suite-secret",
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django.contrib.sessions",
            "sessions_tests",
        ],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(workdir / "suite.sqlite3"),
                # A file, not Django's in-memory test database: the engine opens its own
                # connection to the same database.
                "TEST": {"NAME": str(workdir / "test_suite.sqlite3")},
            }
        },
        CACHES={
            "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
        },
        # Django's test settings leave USE_TZ False (the *WithTimeZone classes turn it on);
        # UTC so naive times mean the same to Django's ORM and the engine.
        USE_TZ=False,
        TIME_ZONE="UTC",
        SESSION_ENGINE="sessionkit.django.db",
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
            teardown_databases(old_config, verbosity=0)
            teardown_test_environment()

    totals = {"passed": 0, "failed": 0, "not applicable": 0, "skipped by Django": 0}
    print(f"\n{'class':45} {'passed':>7} {'failed':>7} {'n/a':>5} {'skipped':>8}")
    for name, counts in result.per_class.items():
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
    print(
        f"django sessions_tests: {totals['passed']} passed, {totals['failed']} failed, "
        f"{totals['not applicable'] + totals['skipped by Django']} skipped"
    )
    sys.exit(0 if result.wasSuccessful() and totals["failed"] == 0 else 1)


if __name__ == "__main__":
    main()
