"""``SESSION_ENGINE = "sessionkit.django.db"``: Django's ``django_session`` table, through the
sessionkit ``db`` engine (SQLite or PostgreSQL, its own connection)."""

from django.contrib.sessions.backends.db import SessionStore as DjangoDBStore

from sessionkit.django._base import (
    NativeSessionStore,
    common_settings,
    common_settings_key,
    database_settings_key,
    database_url,
)


class SessionStore(NativeSessionStore):
    """Django's database session store, stored by the sessionkit ``db`` engine."""

    engine_name = "db"
    #: The table used when the model class cannot be imported (contrib.sessions not installed).
    default_table = "django_session"

    @classmethod
    def get_model_class(cls):
        """Django's ``Session`` model (the admin and ``get_decoded()`` read the same rows)."""
        return DjangoDBStore.get_model_class()

    @classmethod
    def db_table(cls):
        """The table the engine uses: the model's, so a custom model's subclass points the
        engine at its table."""
        try:
            model = cls.get_model_class()
        except (ImportError, RuntimeError, LookupError):
            model = None
        return model._meta.db_table if model is not None else cls.default_table

    @classmethod
    def settings_key(cls):
        return (common_settings_key(), database_settings_key())

    @classmethod
    def engine_settings(cls):
        return {
            **common_settings(),
            "SESSION_DB_URL": database_url(),
            "SESSION_DB_TABLE": cls.db_table(),
        }
