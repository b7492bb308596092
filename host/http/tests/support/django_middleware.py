"""Runs real Django's SessionMiddleware over scenarios read as JSON on stdin.

Input: {"now": <unix seconds>, "scenarios": [{"name", "settings", "cookie", "actions",
"status", "vary"}, ...]}. Output (stdout): a JSON list with, per scenario, the Set-Cookie
headers (Morsel.OutputString, what Django sends), the Vary header, the status, the exception
class if the middleware raised, and the values the view read. Session keys are replaced by
placeholders: {existing}, {existing2}, {unknown}, or {new} for a key minted during the request.

Time is frozen at "now" for time.time() and django.utils.timezone.now(). Run through
sessionkit_testkit::run_django_with_input, whose prelude configures Django from the environment
(SESSION_ENGINE = the cache backend over a locmem cache).
"""

import datetime
import json
import sys
from unittest import mock

from django.contrib.sessions.backends.cache import SessionStore
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpResponse
from django.test import RequestFactory, override_settings

UNKNOWN_KEY = "unknownunknownunknownunknown1234"


def run(now, scenario):
    frozen = datetime.datetime.fromtimestamp(now, tz=datetime.timezone.utc)
    with mock.patch("time.time", return_value=float(now)), mock.patch(
        "django.utils.timezone.now", return_value=frozen
    ), override_settings(**scenario.get("settings", {})):
        keys = {}
        for name, seed in (("existing", "one"), ("existing2", "two")):
            store = SessionStore()
            store["seed"] = seed
            store.save()
            keys[name] = store.session_key
        keys["unknown"] = UNKNOWN_KEY
        cookie = scenario.get("cookie")
        extra = {}
        if cookie is not None:
            for name, key in keys.items():
                cookie = cookie.replace("{%s}" % name, key)
            extra["HTTP_COOKIE"] = cookie
        request = RequestFactory().get("/", **extra)
        reads = []

        def view(request):
            session = request.session
            for action in scenario.get("actions", []):
                op = action[0]
                if op == "get":
                    reads.append(session.get(action[1]))
                elif op == "set":
                    session[action[1]] = action[2]
                elif op == "flush":
                    session.flush()
                elif op == "cycle_key":
                    session.cycle_key()
                elif op == "clear":
                    session.clear()
                elif op == "set_expiry":
                    session.set_expiry(action[1])
                elif op == "set_expiry_at":
                    session.set_expiry(frozen + datetime.timedelta(seconds=action[1]))
                elif op == "delete_record":
                    SessionStore().delete(session.session_key)
                elif op == "mark_modified":
                    session.modified = True
                else:
                    raise ValueError("unknown action %r" % (op,))
            response = HttpResponse("ok", status=scenario.get("status", 200))
            if scenario.get("vary") is not None:
                response["Vary"] = scenario["vary"]
            return response

        result = {"name": scenario["name"], "exception": None, "reads": reads}
        try:
            response = SessionMiddleware(view)(request)
        except Exception as error:  # noqa: BLE001 - the class name is the result
            result.update(exception=type(error).__name__, status=None, set_cookie=[], vary=None)
            return result
        set_cookie = [morsel.OutputString() for morsel in response.cookies.values()]
        result.update(
            status=response.status_code,
            set_cookie=[normalise(value, keys) for value in set_cookie],
            vary=response.get("Vary"),
        )
        return result


def normalise(header, keys):
    name, _, rest = header.partition("=")
    value, sep, attributes = rest.partition(";")
    for placeholder, key in keys.items():
        if value == key:
            value = "{%s}" % placeholder
            break
    else:
        if value != '""':
            value = "{new}"
    return "%s=%s%s%s" % (name, value, sep, attributes)


def main():
    spec = json.load(sys.stdin)
    print(json.dumps([run(spec["now"], scenario) for scenario in spec["scenarios"]]))


main()
