"""``SESSION_ENGINE = "sessionkit.django.account_db"``: database sessions with an indexed
``account_id`` column (Django's documented custom-session-model example), through the
sessionkit ``account_db`` engine, which fills it from ``_auth_user_id`` on every save.

The engine keeps its own table (``account_sessions``) unless a subclass's ``get_model_class()``
returns a model like Django's example ``CustomSession`` (``AbstractBaseSession`` plus
``account_id = IntegerField(null=True, db_index=True)``), whose table it then uses.
"""

from sessionkit.django import db


class SessionStore(db.SessionStore):
    """A database session store whose rows carry the account they belong to."""

    engine_name = "account_db"
    default_table = "account_sessions"

    @classmethod
    def get_model_class(cls):
        """No Django model by default; subclasses return theirs to share its table."""
        return None

    @classmethod
    def session_keys_of_account(cls, account_id):
        """The keys of the live sessions of ``account_id`` (a user's pk)."""
        return cls.native_engine().sessions_of_account(int(account_id))

    @classmethod
    def delete_sessions_of_account(cls, account_id, keep=None):
        """Logs ``account_id`` out everywhere except the session ``keep`` (e.g. the current
        request's ``session.session_key``); returns how many sessions were deleted."""
        return cls.native_engine().delete_sessions_of_account(int(account_id), keep)
