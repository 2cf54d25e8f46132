"""``weintervene``: the operator's command.

Examples::

    weintervene run                      # every service and the gateway, one process each, own broker users
    weintervene run --service analytics  # one service (a container, a scaled instance)
    weintervene demo                     # load the demo data (services must be running)
    weintervene audit verify             # check retention's hash-chained audit log
    weintervene rotate-key               # a new secret key; then --rekey, --status (docs/SECURITY.md)
    weintervene create-user --email ops@example.org --name "Ops" --role operator < password.txt
"""
from __future__ import annotations

import eventlet

eventlet.monkey_patch()  # before anything imports socket or threading

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import getpass  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402

from weintervene.config import SERVICES, Settings, missing_secrets, require_secrets  # noqa: E402
from weintervene.plugins import command_registrars  # noqa: E402


def _settings() -> Settings:
    return Settings.from_env()


def _operator_settings() -> Settings:
    """Settings with the operator's own broker user, where ``weintervene run`` made one."""
    from weintervene.runner import component_uri

    settings = _settings()
    return dataclasses.replace(settings, amqp_uri=component_uri(settings, "operator"))


def cmd_run(args) -> int:
    from weintervene.runner import ALL_COMPONENTS, wait_for_broker

    settings = _settings()
    names = args.service or list(ALL_COMPONENTS)
    unknown = set(names) - set(ALL_COMPONENTS)
    if unknown:
        print(f"unknown service(s): {', '.join(sorted(unknown))}; choose from {', '.join(ALL_COMPONENTS)}", file=sys.stderr)
        return 2
    require_secrets(settings, names)  # before waiting on the broker: a refusal is at once
    wait_for_broker(settings.amqp_uri)
    catcher = None
    if args.demo and not args.service:
        # The demo's mail and SMS catcher (development mode, loopback settings only).
        from weintervene.catcher import start_catcher

        catcher = start_catcher(settings)
    try:
        return _run(args, settings, names)
    finally:
        if catcher is not None:
            catcher.terminate()
            catcher.wait(timeout=10)


def _run(args, settings, names) -> int:
    from weintervene.runner import (
        component_uri, configure, provision_local_broker, run_each_in_its_own_process, run_services,
    )

    if not args.service and settings.broker_per_service_users and provision_local_broker(settings) is not None:
        # One process per component, each with its own broker user (see weintervene.runner).
        return run_each_in_its_own_process(settings, names, demo=args.demo)
    if len(names) == 1:
        # One service per process, as in production: its own broker user where one was made.
        settings = dataclasses.replace(settings, amqp_uri=component_uri(settings, names[0]))
    configure(settings)

    def after_start():
        if args.demo:
            from weintervene.demo import ensure_demo

            ensure_demo(settings)
        if "gateway" in names:
            print(f"\nWeIntervene is running at {settings.public_base_url}/  (Ctrl-C stops it)", flush=True)
            if args.demo:
                from weintervene.demo import print_demo_logins

                print_demo_logins()

    run_services(names, on_started=after_start)
    return 0


def cmd_demo(args) -> int:
    from weintervene.demo import ensure_demo, print_demo_logins
    from weintervene.runner import configure

    settings = _operator_settings()
    configure(settings)
    ensure_demo(settings, force=args.force)
    print_demo_logins()
    return 0


def cmd_migrate(args) -> int:
    from weintervene.db import ensure_database, make_engine, migrate
    from weintervene.runner import configure

    settings = _settings()
    # Migrations compute keyed hashes (identity's fences): never under a published key.
    require_secrets(settings, ["migrate"])
    configure(settings)
    for name in args.service or SERVICES:
        url = settings.database_url(name)
        ensure_database(url)
        engine = make_engine(url)
        migrate(name, engine)
        engine.dispose()
        print(f"{name}: up to date")
    return 0


def cmd_make_migration(args) -> int:
    from weintervene.db import make_migration

    make_migration(args.service, args.message)
    return 0


def cmd_create_user(args) -> int:
    from nameko.standalone.rpc import ClusterRpcClient

    from weintervene.runner import configure

    settings = _operator_settings()
    configure(settings)
    password = sys.stdin.readline().rstrip("\n") if not sys.stdin.isatty() else getpass.getpass("Password: ")
    with ClusterRpcClient(uri=settings.amqp_uri) as rpc:
        user = rpc.identity.bootstrap_user(
            {"email": args.email, "display_name": args.name, "role": args.role, "tenant_id": args.tenant},
            password,
        )
    print(json.dumps(user, indent=2))
    return 0


def _each_keyed_store(settings):
    """``(service, rekeying module, session)`` for each service that stores keyed hashes.

    The services declare their module as a ``weintervene.keyed_stores`` entry point.
    """
    from sqlalchemy.orm import Session

    from weintervene.db import ensure_database, make_engine, migrate
    from weintervene.plugins import keyed_stores

    for name, module in keyed_stores().items():
        url = settings.database_url(name)
        ensure_database(url)
        engine = make_engine(url)
        try:
            migrate(name, engine)
            with Session(engine) as session:
                yield name, module, session
        finally:
            engine.dispose()


def cmd_rotate_key(args) -> int:
    """``rotate-key``: a new key and the settings to set; ``--rekey`` and ``--status`` after the restart."""
    from weintervene.hashing import KeyringError, keyring_of, new_secret

    settings = _settings()
    try:
        ring = keyring_of(settings)
    except KeyringError as exc:
        print(f"cannot read the keyring: {exc}", file=sys.stderr)
        return 2
    if not (args.rekey or args.status):
        new_id = ring.next_key_id()
        older = [f"{ring.current_id}:{settings.secret_key}"] + [
            item.strip() for item in settings.previous_secret_keys.split(",") if item.strip()]
        print(f"New key {new_id} generated (256 random bits). Set these three on every service, the gateway and\n"
              "the migrate job (they are secrets: put them in your secret store, not in a file under version\n"
              "control), then restart everything:\n")
        print(f"WEINTERVENE_SECRET_KEY_ID={new_id}")
        print(f"WEINTERVENE_SECRET_KEY={new_secret()}")
        print(f"WEINTERVENE_PREVIOUS_SECRET_KEYS={','.join(older)}")
        print(f"\nKey {ring.current_id} then only verifies and finds what was made under it. After the restart run\n"
              "`weintervene rotate-key --rekey` with the new settings: it re-keys every stored value whose\n"
              "original is still known and lists, per key id, what still needs each key.")
        return 0
    if "WEINTERVENE_SECRET_KEY" in missing_secrets(settings, ["migrate"]) and not settings.dev_mode:
        print("refusing to re-key under a published default key: set WEINTERVENE_SECRET_KEY first", file=sys.stderr)
        return 2
    usage: dict[str, dict[str, int]] = {}
    for name, module, session in _each_keyed_store(settings):
        if args.rekey:
            for column, n in sorted(module.rekey(session).items()):
                print(f"{name}: re-keyed {n} {column} under key {ring.current_id}")
        for column, counts in module.key_usage(session).items():
            usage[f"{name}: {column}"] = counts
    return _print_key_usage(ring, usage, settings)


def _print_key_usage(ring, usage: dict[str, dict[str, int]], settings) -> int:
    """Per key id, the stored values made with it; which previous keys nothing needs any more."""
    print(f"current key: {ring.current_id}")
    for place, counts in usage.items():
        listed = ", ".join(f"key {k}: {n}" for k, n in sorted(counts.items())) or "none stored"
        print(f"  {place}: {listed}")
    hours = settings.session_absolute_seconds / 3600
    for key_id in sorted(k for k in ring.keys if k != ring.current_id):
        needed = sum(counts.get(key_id, 0) for counts in usage.values())
        if needed:
            print(f"key {key_id}: still needed by {needed} stored values (they keep no original to re-key from); "
                  f"keep it in WEINTERVENE_PREVIOUS_SECRET_KEYS")
        else:
            print(f"key {key_id}: no stored value needs it; drop it from WEINTERVENE_PREVIOUS_SECRET_KEYS once "
                  f"{hours:g} h (the session lifetime) have passed since the restart, when no session's CSRF "
                  "token can be under it")
    unknown = sorted({k for counts in usage.values() for k in counts if k not in ring.keys})
    if unknown:
        print(f"stored values name key ids this keyring does not hold: {', '.join(unknown)}; they no longer match",
              file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="weintervene", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="start services (all by default)")
    run.add_argument("--service", action="append", help="run only this service (repeatable)")
    run.add_argument("--demo", action="store_true", help="load the demo data once after start")
    run.set_defaults(func=cmd_run)

    demo = sub.add_parser("demo", help="load the demo data into running services")
    demo.add_argument("--force", action="store_true", help="load even if already loaded")
    demo.set_defaults(func=cmd_demo)

    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.add_argument("--service", action="append", choices=SERVICES)
    migrate.set_defaults(func=cmd_migrate)

    make = sub.add_parser("make-migration", help="(developers) autogenerate a migration")
    make.add_argument("service", choices=SERVICES)
    make.add_argument("message")
    make.set_defaults(func=cmd_make_migration)

    create = sub.add_parser("create-user", help="create a user (the first operator); password on stdin")
    create.add_argument("--email", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--role", default="operator")
    create.add_argument("--tenant", default=None, help="tenant id (default: the platform tenant)")
    create.set_defaults(func=cmd_create_user)

    rotate = sub.add_parser("rotate-key", help="rotate WEINTERVENE_SECRET_KEY (keyed hashes, CSRF tokens)")
    rotate_mode = rotate.add_mutually_exclusive_group()
    rotate_mode.add_argument("--rekey", action="store_true",
                             help="after the restart with the new key: re-key what can be, then --status")
    rotate_mode.add_argument("--status", action="store_true",
                             help="per key id, the stored values made with it; which old keys can be dropped")
    rotate.set_defaults(func=cmd_rotate_key)

    # Each service's own commands (import-directory, export-directory, audit ...), declared
    # by the service as a ``weintervene.commands`` entry point (weintervene.plugins).
    for register in command_registrars():
        register(sub)
    return parser


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("nameko").setLevel(logging.WARNING)
    logging.getLogger("kombu").setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
