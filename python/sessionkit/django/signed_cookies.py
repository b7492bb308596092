"""``SESSION_ENGINE = "sessionkit.django.signed_cookies"``: the session is the cookie, signed
and checked by the sessionkit ``signed_cookies`` engine and codec (Django's salt and
``max_age``)."""

from sessionkit.django._base import _FOUND, NativeSessionStore, codec, micros

#: Django's salt for signed-cookie sessions (not ``key_salt``).
SALT = "django.contrib.sessions.backends.signed_cookies"


class SessionStore(NativeSessionStore):
    """Django's signed-cookie session store, run by the sessionkit ``signed_cookies`` engine."""

    engine_name = "signed_cookies"

    def _cookie_codec(self):
        return codec(SALT)

    def load(self):
        """The cookie's data if it verifies within ``SESSION_COOKIE_AGE``; otherwise a new,
        empty session (Django resets without logging)."""
        outcome, text = self._engine().load(
            self._cookie_codec(), self.session_key, self.get_session_cookie_age()
        )
        if outcome == _FOUND:
            try:
                return self.serializer().loads(text.encode("latin-1"))
            except Exception:
                pass
        self.create()
        return {}

    def create(self):
        """Nothing to store: the session is new and will be sent as a cookie."""
        self.modified = True

    def save(self, must_create=False):
        """The new cookie value becomes the key (the engine signs the session)."""
        self._session_key = self._get_session_key()
        self.modified = True

    def exists(self, session_key=None):
        """Nothing is stored server-side, so no key is ever taken."""
        return False

    def delete(self, session_key=None):
        """Clear the session; the middleware then deletes the cookie."""
        self._session_key = ""
        self._session_cache = {}
        self.modified = True

    def cycle_key(self):
        """Re-sign: the cookie changes, the old one stays valid until it expires."""
        self.save()

    def _get_session_key(self):
        return self._engine().write(
            self._cookie_codec(),
            "",
            self._dumps(self._session),
            micros(self.get_expiry_date()),
            False,
        )

    @classmethod
    def clear_expired(cls):
        """Cookies expire in the browser; there is nothing to clear."""

    # No I/O behind any of these (the engine is non-blocking), so the async twins call the
    # sync methods directly, as Django's signed_cookies backend does.
    async def aload(self):
        return self.load()

    async def acreate(self):
        return self.create()

    async def asave(self, must_create=False):
        return self.save(must_create=must_create)

    async def aexists(self, session_key=None):
        return self.exists(session_key=session_key)

    async def adelete(self, session_key=None):
        return self.delete(session_key=session_key)

    async def acycle_key(self):
        return self.cycle_key()

    @classmethod
    async def aclear_expired(cls):
        return cls.clear_expired()
