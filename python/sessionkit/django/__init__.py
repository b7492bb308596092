"""Django ``SESSION_ENGINE`` modules backed by sessionkit's engine libraries.

Each submodule has the ``SessionStore`` Django loads: ``sessionkit.django.db``, ``.cached_db``,
``.cache``, ``.file``, ``.signed_cookies`` and ``.account_db``. Storage and signing run in Rust
(the same engine libraries and loader the Rust host uses); the rest of ``SessionBase`` is
Django's own, so ``request.session``, ``login()``, ``logout()``, ``clearsessions`` and the
admin work unchanged.
"""
