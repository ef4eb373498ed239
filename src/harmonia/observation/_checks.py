"""Parameter checks shared by the built-in observers (run in ``observe``, scikit-learn style)."""

from __future__ import annotations

from typing import Any


def check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_fraction(name: str, value: Any, *, auto: bool = False) -> Any:
    if auto and value == "auto":
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 0.5:
        allowed = "'auto' or " if auto else ""
        raise ValueError(f"{name} must be {allowed}a number in (0, 0.5], got {value!r}")
    return float(value)


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return str(value)


def need(module: str, observer: str, extra: str) -> Any:
    """Import ``module`` or say which extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError(
            f"the {observer!r} observer needs {module.split('.')[0]}: "
            f"pip install 'harmonia[{extra}]'",
            name=error.name,
        ) from error
