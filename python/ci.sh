#!/usr/bin/env bash
# sessionkit for Django, judged by Django: builds the wheel (maturin build --release), installs
# the package with `pip install ./python` into a fresh virtualenv, downloads Django 5.2's source
# distribution (never vendored) and runs its tests/sessions_tests against the sessionkit
# SessionStores (tests/django_suite.py), then the demo project's flows and the Django <-> Rust
# sharing tests (tests/demo). Exits non-zero on any failure.
#
# Needs: cargo, python3 (with venv), PyPI, PostgreSQL and Redis on 127.0.0.1 (as .ci/run starts
# them; SESSIONKIT_TEST_POSTGRES_URL / SESSIONKIT_TEST_REDIS_URL override the defaults).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
work=${SESSIONKIT_PY_WORK:-$root/target/python-ci}
venv=$work/venv
mkdir -p "$work"
export SESSIONKIT_TEST_POSTGRES_URL="${SESSIONKIT_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
export SESSIONKIT_TEST_REDIS_URL="${SESSIONKIT_TEST_REDIS_URL:-redis://127.0.0.1:6379}"

step() { printf '\n==> python: %s\n' "$*"; }

step "virtualenv with maturin and Django 5.2 ($venv)"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --upgrade "maturin>=1.5,<2" "django>=5.2,<6" "redis>=5" "psycopg[binary]>=3.1,<4"
"$venv/bin/python" -c 'import django; print("Django", django.get_version())'

step "maturin build --release (the wheel for this platform)"
rm -rf "$work/wheels"
(cd "$here" && "$venv/bin/maturin" build --release --out "$work/wheels")
ls -l "$work/wheels"
wheel=$(ls "$work/wheels"/sessionkit-*.whl)
"$venv/bin/python" - "$wheel" <<'EOF'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
engines = sorted(n for n in names if "/_engines/libsessionkit_engine_" in n)
print("engines in the wheel:", ", ".join(n.rsplit("/", 1)[1] for n in engines))
assert len(engines) == 6, f"the wheel must bundle the six engine libraries, has {engines}"
EOF

step "pip install ./python"
"$venv/bin/pip" uninstall --quiet --yes sessionkit >/dev/null 2>&1 || true
"$venv/bin/pip" install --quiet "$here"
# Run from outside the source tree so `import sessionkit` is the installed package.
(cd "$work" && "$venv/bin/python" -c 'import sessionkit, sessionkit._native; print("installed", sessionkit.__file__)')

step "Django's source distribution (tests/sessions_tests)"
django_src=$(ls -d "$work"/django-src/django-5.2.* 2>/dev/null | head -n 1 || true)
if [ -z "$django_src" ]; then
  rm -rf "$work/django-src" && mkdir -p "$work/django-src"
  "$venv/bin/pip" download --quiet --no-binary :all: --no-deps "django>=5.2,<6" -d "$work/django-src"
  tar -xzf "$work"/django-src/django-5.2.*.tar.gz -C "$work/django-src"
  django_src=$(ls -d "$work"/django-src/django-5.2.*/ | head -n 1)
fi
echo "using $django_src"

step "Django's sessions_tests against the sessionkit backends"
(cd "$work" && "$venv/bin/python" "$here/tests/django_suite.py" "$django_src")

step "the Rust sessionkit CLI (for the sharing tests)"
cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p sessionkit-cli
export SESSIONKIT_CLI="$root/target/release/sessionkit"

step "a stock Django project with SESSION_ENGINE = sessionkit.django.db"
demo_tmp=$(mktemp -d "$work/demo.XXXXXX")
trap 'rm -rf "$demo_tmp"' EXIT
(cd "$here/tests/demo" && DEMO_DB="$demo_tmp/demo.sqlite3" DEMO_SESSIONS_DB="$demo_tmp/sessions.sqlite3" \
  DJANGO_SETTINGS_MODULE=demo_site.settings \
  "$venv/bin/python" -m django test demo_site --noinput -v 2)
