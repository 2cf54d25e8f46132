"""What the services contribute to the shared library, declared by them and found at run time.

``weintervene/`` depends on no service: it never imports ``services`` or ``gateway``
(``tests/unit/test_shared_library_imports.py`` keeps it so). Each service declares what it
contributes as a Python entry point in ``pyproject.toml``, read here with
:mod:`importlib.metadata`:

- ``weintervene.services``: the nameko service class a component runs
  (``identity = "services.identity.service:IdentityService"``), for :mod:`weintervene.runner`;
- ``weintervene.commands``: a function ``register(subparsers)`` that adds the service's own
  ``weintervene`` commands (``directory = "services.directory.commands:register"``);
- ``weintervene.keyed_stores``: a module with ``rekey(session)`` and ``key_usage(session)`` for a
  service that stores keyed hashes, for ``weintervene rotate-key``.

Entry points are part of the installed project's metadata, so a change to them takes effect
on the next ``make venv`` (the stamp follows ``pyproject.toml``) or image build.

Example::

    service_class("identity")          # -> services.identity.service.IdentityService
    for register in command_registrars(): register(subparsers)
"""
from __future__ import annotations

import functools
from importlib.metadata import EntryPoint, distributions

SERVICE_GROUP = "weintervene.services"
COMMAND_GROUP = "weintervene.commands"
KEYED_STORE_GROUP = "weintervene.keyed_stores"


class NotRegistered(LookupError):
    """No installed package declares this name in this group."""


@functools.cache  # the metadata of one process does not change; reading it all costs ~25 ms
def _declared(group: str) -> dict[str, EntryPoint]:
    # Every distribution on sys.path, not only the first of each name (as entry_points() does):
    # a stale weintervene.egg-info left in a source checkout (older `pip install .`) comes first
    # on sys.path when Python runs from that checkout, and would hide the installed metadata's
    # groups. The first declaration of a name still wins, in sys.path order.
    found: dict[str, EntryPoint] = {}
    for dist in distributions():
        for ep in dist.entry_points.select(group=group):
            found.setdefault(ep.name, ep)
    # Sorted by name: the order of commands in --help and of re-keying does not depend on the
    # order in which the installer wrote the metadata.
    return dict(sorted(found.items()))


def _load(group: str, name: str):
    declared = _declared(group)
    if name not in declared:
        raise NotRegistered(
            f"no {group!r} entry point named {name!r} (declared: {', '.join(declared) or 'none'}); "
            "is the project installed (`make venv`)?")
    return declared[name].load()


def service_class(name: str):
    """The nameko service class of component ``name``, as its package declares it."""
    return _load(SERVICE_GROUP, name)


def service_names() -> tuple[str, ...]:
    """Every component that declares a service class."""
    return tuple(_declared(SERVICE_GROUP))


def command_registrars() -> list:
    """Each service's ``register(subparsers)``, in the services' name order."""
    return [ep.load() for ep in _declared(COMMAND_GROUP).values()]


def keyed_stores() -> dict[str, object]:
    """``{service: module with rekey() and key_usage()}`` for every service that stores keyed hashes."""
    return {name: ep.load() for name, ep in _declared(KEYED_STORE_GROUP).items()}
