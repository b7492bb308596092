"""``SESSION_ENGINE = "sessionkit.django.file"``: one file per session in
``SESSION_FILE_PATH``, through the sessionkit ``file`` engine (same file names and contents as
Django's file backend)."""

import os
import tempfile

from django.conf import settings
from django.contrib.sessions.backends.base import VALID_KEY_CHARS
from django.contrib.sessions.exceptions import InvalidSessionKey
from django.core.exceptions import ImproperlyConfigured

from sessionkit.django._base import NativeSessionStore, common_settings, common_settings_key


class SessionStore(NativeSessionStore):
    """Django's file session store, run by the sessionkit ``file`` engine."""

    engine_name = "file"

    def __init__(self, session_key=None):
        self.storage_path = self._get_storage_path()
        self.file_prefix = settings.SESSION_COOKIE_NAME
        super().__init__(session_key)

    @classmethod
    def _get_storage_path(cls):
        # Django's check, kept so a bad SESSION_FILE_PATH fails the same way, at construction.
        try:
            return cls._storage_path
        except AttributeError:
            storage_path = (
                getattr(settings, "SESSION_FILE_PATH", None) or tempfile.gettempdir()
            )
            if not os.path.isdir(storage_path):
                raise ImproperlyConfigured(
                    "The session storage path %r doesn't exist. Please set your"
                    " SESSION_FILE_PATH setting to an existing directory in which"
                    " Django can store session data." % storage_path
                )
            cls._storage_path = storage_path
            return storage_path

    def _key_to_file(self, session_key=None):
        """The file a key is stored in (the engine uses the same name)."""
        if session_key is None:
            session_key = self._get_or_create_session_key()
        if not set(session_key).issubset(VALID_KEY_CHARS):
            raise InvalidSessionKey("Invalid characters in session key")
        return os.path.join(self.storage_path, self.file_prefix + session_key)

    @classmethod
    def settings_key(cls):
        return (common_settings_key(), str(cls._get_storage_path()))

    @classmethod
    def engine_settings(cls):
        return {
            **common_settings(),
            "SESSION_FILE_PATH": os.path.abspath(str(cls._get_storage_path())),
        }
