"""The headless CLI, on the top floor beside app.py: ``studio …`` / ``python -m cli …``.

One module per subcommand group (dataset, train, coral, build), each with ``register(subparsers)``.
May import builder, coral_runtime and core; nothing imports cli (except its tests).
"""
