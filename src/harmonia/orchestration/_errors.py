"""Typed errors of orchestration: a bad inventory names every bad field."""

from __future__ import annotations

from pydantic import ValidationError

from harmonia.core.errors import HarmoniaError, Issue


class InventoryError(HarmoniaError, ValueError):
    """Nodes or service requirements are invalid; ``issues`` name each field (``nodes.2.cores``).

    Raised before any placement starts, so that nothing is planned against half an inventory.
    """

    def __init__(self, issues: list[Issue], source: str | None = None) -> None:
        self.issues = issues
        self.source = source
        where = f"{source}: " if source else ""
        lines = "\n".join(f"  - {issue}" for issue in issues)
        super().__init__(f"{where}invalid inventory ({len(issues)} problem(s)):\n{lines}")

    @classmethod
    def from_validation(
        cls, error: ValidationError, prefix: str = "", source: str | None = None
    ) -> InventoryError:
        """One issue per pydantic error, its path rooted at ``prefix``."""
        issues = []
        for item in error.errors():
            path = ".".join(str(part) for part in item["loc"])
            path = f"{prefix}.{path}" if prefix and path else prefix or path
            issues.append(Issue(path, str(item["msg"]).removeprefix("Value error, ")))
        return cls(issues, source)


class SolverUnavailable(HarmoniaError, RuntimeError):
    """The optimal placer's solver is not installed; the message says how to install it."""
