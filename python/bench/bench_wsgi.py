"""A Django view behind ``SessionMiddleware`` under a WSGI server (waitress, one thread), with
Django's own session engine against the sessionkit one.

    pip install waitress
    python bench/bench_wsgi.py [REQUESTS]

For each engine a server process is started on 127.0.0.1 (a free port) and one keep-alive
client sends REQUESTS requests (default 500) carrying the same session cookie; the view reads
and increments a counter in the session, so each request is a load plus a modify+save.
Prints a Markdown row per engine: mean and median milliseconds per request.
"""

import http.client
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ENGINES = [
    ("Django db (SQLite)", "django.contrib.sessions.backends.db"),
    ("sessionkit db (SQLite)", "sessionkit.django.db"),
    ("Django cache (locmem)", "django.contrib.sessions.backends.cache"),
    ("sessionkit cache (locmem)", "sessionkit.django.cache"),
]


def serve(engine, port, workdir):
    from django.conf import settings

    settings.configure(
        SECRET_KEY="sessionkit-wsgi-bench",
        DEBUG=False,
        ALLOWED_HOSTS=["127.0.0.1"],
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.sessions"],
        MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware"],
        ROOT_URLCONF=__name__,
        DATABASES={
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": f"{workdir}/django.sqlite3"}
        },
        SESSION_DB_URL=f"sqlite://{workdir}/sessions.sqlite3",
        SESSION_ENGINE=engine,
        USE_TZ=True,
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", "sessions", verbosity=0)
    from django.core.wsgi import get_wsgi_application
    from waitress import serve as waitress_serve

    waitress_serve(get_wsgi_application(), host="127.0.0.1", port=port, threads=1, _quiet=True)


def counter(request):
    from django.http import HttpResponse

    request.session["n"] = request.session.get("n", 0) + 1
    return HttpResponse(str(request.session["n"]))


def _urlpatterns():
    from django.urls import path

    return [path("", counter)]


def __getattr__(name):
    # The URLconf is this module; its patterns are built once Django is set up.
    if name == "urlpatterns":
        return _urlpatterns()
    raise AttributeError(name)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(label, engine, requests):
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="sessionkit-wsgi-") as workdir:
        server = subprocess.Popen(
            [sys.executable, __file__, "serve", engine, str(port), workdir],
            env={**os.environ, "PYTHONPATH": os.path.dirname(os.path.abspath(__file__))},
            # waitress warns about its queue depth on every request under a steady client.
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                    connection.request("GET", "/")
                    response = connection.getresponse()
                    response.read()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            cookie = response.getheader("Set-Cookie").split(";", 1)[0]
            times = []
            for _ in range(requests):
                start = time.perf_counter()
                connection.request("GET", "/", headers={"Cookie": cookie})
                response = connection.getresponse()
                body = response.read()
                times.append(time.perf_counter() - start)
                assert response.status == 200, (response.status, body)
            assert int(body) == requests + 1, "the session counter did not persist"
            connection.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(
        f"| {label} | {statistics.mean(times) * 1e3:.2f} | {statistics.median(times) * 1e3:.2f} |",
        flush=True,
    )


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return
    requests = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    print(f"{requests} requests, one keep-alive client, waitress with one thread\n")
    print("| engine | mean ms/request | median ms/request |")
    print("| --- | ---: | ---: |")
    for label, engine in ENGINES:
        measure(label, engine, requests)


if __name__ == "__main__":
    main()
