"""Django's documented custom session model with an `account_id` column (the layout of
sessionkit's account_db engine), for the interop tests: SESSION_ENGINE = "acct_store".

The peer's directory is on sys.path (it runs as a script), so Django imports this module by
that name after setup. The table is `acct_customsession`, as Django would name the model in an
app `acct`; it is created by whichever side opens it first (sessionkit uses Django's DDL).
"""

from django.contrib.sessions.backends.db import SessionStore as DBStore
from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import models


class CustomSession(AbstractBaseSession):
    account_id = models.IntegerField(null=True, db_index=True)

    class Meta:
        app_label = "sessions"
        db_table = "acct_customsession"


class SessionStore(DBStore):
    @classmethod
    def get_model_class(cls):
        return CustomSession

    def create_model_instance(self, data):
        obj = super().create_model_instance(data)
        try:
            account_id = int(data.get("_auth_user_id"))
        except (ValueError, TypeError):
            account_id = None
        obj.account_id = account_id
        return obj
