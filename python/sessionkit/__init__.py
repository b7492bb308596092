"""sessionkit for Python: Django's session engines run by sessionkit's Rust engine libraries.

Set ``SESSION_ENGINE = "sessionkit.django.db"`` (or ``.cached_db``, ``.cache``, ``.file``,
``.signed_cookies``, ``.account_db``); see ``sessionkit.django``.
"""

import os
from pathlib import Path

__version__ = "0.1.0"

#: The engine libraries built into the wheel, beside the extension.
BUNDLED_ENGINES = Path(__file__).resolve().parent / "_engines"


def engine_directories():
    """Where engine libraries are looked for: ``$SESSIONKIT_ENGINE_PATH`` (absolute,
    ``:``-separated, searched first, as the Rust host does), then the bundled ones."""
    dirs = [
        Path(entry)
        for entry in os.environ.get("SESSIONKIT_ENGINE_PATH", "").split(os.pathsep)
        if entry and os.path.isabs(entry)
    ]
    dirs.append(BUNDLED_ENGINES)
    return dirs


def engine_library(name):
    """The absolute path of ``libsessionkit_engine_<name>.so``, from ``engine_directories()``.

    Raises ``LookupError`` naming every directory searched when it is nowhere.
    """
    file_name = f"libsessionkit_engine_{name}.so"
    searched = engine_directories()
    for directory in searched:
        candidate = directory / file_name
        if candidate.is_file():
            return str(candidate)
    raise LookupError(
        f"sessionkit engine library {file_name} not found in "
        f"{', '.join(str(d) for d in searched)} (set SESSIONKIT_ENGINE_PATH, or reinstall "
        f"sessionkit so its wheel bundles the engines)"
    )
