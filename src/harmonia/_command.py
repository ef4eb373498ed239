"""The ``harmonia`` command's entry point: the command needs the ``server`` or ``systems``
extra, which a base install (the sdk alone) does not have; say so instead of a traceback."""

from __future__ import annotations

import sys

#: what the command imports that only the extras install
EXTRA_MODULES = frozenset({"typer", "rich", "yaml", "scipy", "river", "pydantic_settings"})


def main() -> None:
    try:
        from harmonia.cli import main as run
    except ModuleNotFoundError as error:
        if error.name not in EXTRA_MODULES:
            raise
        sys.exit(
            f"the harmonia command needs {error.name}, which the base install (the sdk alone) "
            "leaves out: pip install 'harmonia[server]' (the control plane) or "
            "'harmonia[systems]' (the reference systems and the replay lab)"
        )
    run()
