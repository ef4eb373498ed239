"""What every conformance check is: a named call against one plugin that fails loudly."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any


@dataclass(frozen=True)
class Check:
    """One conformance check bound to one plugin.

    Calling it runs the check; any failure comes out as an `AssertionError` that names the
    plugin and the check. ``str(check)`` is ``plugin:check``, a readable pytest id.
    """

    plugin: str
    name: str
    run: Callable[[], None]

    def __call__(self) -> None:
        try:
            self.run()
        except AssertionError as error:
            raise AssertionError(f"{self.plugin}: check {self.name} failed: {error}") from error
        except Exception as error:
            raise AssertionError(
                f"{self.plugin}: check {self.name} raised {type(error).__name__}: {error}"
            ) from error

    def __str__(self) -> str:
        return f"{self.plugin}:{self.name}"


def run_all(checks: Iterable[Check]) -> None:
    """Run ``checks`` in order; the first failure stops the run (scikit-learn's way)."""
    for check in checks:
        check()


@contextmanager
def raises(kind: type[BaseException], match: str | None = None) -> Iterator[None]:
    """Like ``pytest.raises``, without pytest: the block must raise ``kind``, whose message
    matches the regular expression ``match`` (searched) when one is given."""
    try:
        yield
    except kind as error:
        if match is not None and not re.search(match, str(error)):
            raise AssertionError(
                f"raised {type(error).__name__}({str(error)!r}), whose message does not "
                f"match {match!r}"
            ) from error
    else:
        raise AssertionError(f"did not raise {kind.__name__}")


def plugin_label(plugin: Any) -> str:
    """What a check calls a plugin: its registered name, else its class name."""
    if isinstance(plugin, str):
        return plugin
    name = getattr(plugin, "name", None)
    if isinstance(name, str):
        return name
    return getattr(plugin, "__qualname__", None) or type(plugin).__qualname__


def check_registered(group: str, cls: Any, name: str | None) -> None:
    """``cls`` has a string ``name`` (equal to ``name`` when it was looked up by one), and the
    entry point of that name in ``group`` loads ``cls`` itself."""
    own = getattr(cls, "name", None)
    assert isinstance(own, str), f"{cls!r} has no string class attribute 'name'"
    if name is not None:
        assert own == name, f"registered as {name!r} but its name attribute is {own!r}"
    found = {ep.name: ep for ep in entry_points(group=group)}.get(own)
    assert found is not None, (
        f"no entry point {own!r} in group {group!r}: declare "
        f'[project.entry-points."{group}"] {own} = "{cls.__module__}:{cls.__qualname__}" '
        "and reinstall the package"
    )
    loaded = found.load()
    assert loaded is cls, f"entry point {own!r} in {group!r} loads {found.value}, not {cls!r}"
