"""Typed exceptions of the library: every error says what is wrong and where."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Self

if TYPE_CHECKING:
    from pydantic import ValidationError


class HarmoniaError(Exception):
    """Base class of every error Harmonia raises on purpose."""


@dataclass(frozen=True)
class Issue:
    """One problem found in a document: where it is (a dotted field path) and why it is wrong."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason


class DocumentError(HarmoniaError):
    """A document (a policy, a contract, an inventory...) is invalid: ``issues`` lists every
    problem with its field path, ``source`` where the document came from. Subclasses name
    the kind of document in ``kind``."""

    kind: ClassVar[str] = "document"

    def __init__(self, issues: list[Issue], source: str | None = None) -> None:
        self.issues = issues
        self.source = source
        where = f"{source}: " if source else ""
        lines = "\n".join(f"  - {issue}" for issue in issues)
        super().__init__(f"{where}invalid {self.kind} ({len(issues)} problem(s)):\n{lines}")

    @classmethod
    def from_validation(
        cls, error: ValidationError, prefix: str = "", source: str | None = None
    ) -> Self:
        """One issue per pydantic error, its path rooted at ``prefix`` (the caller's field)."""
        issues = []
        for item in error.errors():
            path = ".".join(str(part) for part in (prefix, *item["loc"]) if part != "")
            issues.append(Issue(path, str(item["msg"]).removeprefix("Value error, ")))
        return cls(issues, source)


class PolicyError(DocumentError):
    """A policy is invalid; ``issues`` lists every problem with its field path."""

    kind = "policy"


class ConditionSyntaxError(HarmoniaError, ValueError):
    """A boundary condition does not parse. Nothing in it was evaluated."""

    def __init__(self, text: str, position: int, reason: str) -> None:
        self.text = text
        self.position = position
        self.reason = reason
        pointer = " " * position + "^"
        super().__init__(f"{reason} at position {position}\n  {text}\n  {pointer}")


class UnknownPluginError(HarmoniaError, LookupError):
    """A policy or caller named a plugin that no installed package provides."""

    def __init__(self, group: str, name: str, available: list[str]) -> None:
        self.group = group
        self.name = name
        self.available = available
        super().__init__(
            f"unknown {group} {name!r}; available: {', '.join(sorted(available)) or 'none'}"
        )


class EnergyMeterUnavailable(HarmoniaError, RuntimeError):
    """An energy backend cannot be used on this machine; the message says why and how to fix it."""
