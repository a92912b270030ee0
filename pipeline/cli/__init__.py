"""The command line's top layer: everything ``tasks.py`` computes for its tasks.

``tasks.py`` only declares the Invoke tasks (names, flags, help) and maps errors to exit codes
(``exits.exit_codes``); here are the rest: settings from ``invoke.yaml`` and the flags
(``invocation``), the requests each command builds, the clients it chooses and what it prints
(``stages``, ``account``, ``tools``), and Invoke's own parse errors as exit 2 (``invoke_exit``).
This package may import any layer below it; nothing in ``pipeline`` imports it.
"""
