"""A session engine module for Django's custom-model tests: the sessionkit ``account_db``
engine on the test app's ``CustomSession`` table (Django's documented example of extending the
session model). Named ``SessionStore`` so its salt is Django's (``key_salt`` is
``django.contrib.sessions.`` + the class's qualname)."""

from sessionkit.django import account_db


class SessionStore(account_db.SessionStore):
    """account_db on ``sessions_tests.CustomSession``, with that test store's one-day age."""

    @classmethod
    def get_model_class(cls):
        from sessions_tests.models import CustomSession

        return CustomSession

    def get_session_cookie_age(self):
        return 60 * 60 * 24  # One day, as sessions_tests.models.SessionStore.
