"""Policy files: read YAML or JSON (Harmonia's format or Harmonica's), validate, and check the
strategy and drift detectors a policy names against the plugins installed here.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from harmonia.bounded import DocumentTooComplex, load_yaml
from harmonia.compat.harmonica.policy import convert_harmonica, is_harmonica_policy
from harmonia.core.engine import Engine
from harmonia.core.errors import Issue, PolicyError, UnknownPluginError
from harmonia.core.policy import Policy, parse_policy
from harmonia.core.strategies.base import Strategy
from harmonia.plugins import DRIFT_DETECTORS, STRATEGIES, create_plugin, load_plugin

MAX_POLICY_BYTES = 1_000_000
#: the example policies that ship with the package (Harmonica's presets under ``harmonica/``)
PRESETS = Path(__file__).resolve().parent / "presets"


def presets() -> dict[str, str]:
    """Every shipped preset policy by name (its file name without extension): the text, as
    written, comments included, so users start from an explained example."""
    return {
        path.stem: path.read_text()
        for path in sorted(PRESETS.rglob("*"))
        if path.suffix in {".yaml", ".yml", ".json"}
    }


def load_document(text: str, source: str | None = None) -> Any:
    """A YAML or JSON document (JSON is YAML) sent to the server — a policy, a contract, an
    application's observers — parsed within bounds (`harmonia.bounded`: size, depth, node
    count, no aliases); a `PolicyError` says why it cannot be read."""
    try:
        return load_yaml(text, max_bytes=MAX_POLICY_BYTES)
    except DocumentTooComplex as error:
        raise PolicyError([Issue("", f"refused: {error}")], source) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise PolicyError([Issue("", f"not valid YAML or JSON{where}: {error}")], source) from None


def parse_policy_text(text: str, source: str | None = None) -> Policy:
    """A policy from YAML or JSON text, converted if it is Harmonica's."""
    data = load_document(text, source)
    policy = (
        convert_harmonica(data, source) if is_harmonica_policy(data) else parse_policy(data, source)
    )
    check_plugins(policy, source)
    return policy


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file; `PolicyError` names the file, each field and reason."""
    file = Path(path)
    try:
        if file.stat().st_size > MAX_POLICY_BYTES:
            raise PolicyError([Issue("", f"larger than {MAX_POLICY_BYTES} bytes")], str(file))
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise PolicyError([Issue("", f"cannot read the file: {error}")], str(file)) from None
    return parse_policy_text(text, str(file))


def dump_policy(policy: Policy, fmt: str = "yaml") -> str:
    """The policy as YAML or JSON text that `parse_policy_text` reads back to an equal policy."""
    data = policy.model_dump(mode="json", exclude_none=True, exclude_defaults=False)
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    return yaml.safe_dump(data, sort_keys=False)


def build_strategy(policy: Policy) -> Strategy:
    """The policy's strategy, built with its options."""
    strategy: Strategy = create_plugin(STRATEGIES, policy.strategy, **policy.options)
    return strategy


def build_engine(policy: Policy, *, seed: int = 0) -> Engine:
    """An engine with the policy's strategy and every drift detector it or the policy reads."""
    strategy = build_strategy(policy)
    names = dict.fromkeys([*policy.drift_detectors(), *strategy.detectors])
    factories = {
        name: partial(load_plugin(DRIFT_DETECTORS, name), **policy.drift.detectors.get(name, {}))
        for name in names
    }
    return Engine(policy, strategy, factories, seed=seed)


def check_plugins(policy: Policy, source: str | None = None) -> None:
    """Every plugin the policy names exists here and accepts the parameters given to it."""
    issues: list[Issue] = []
    strategy: Any = None
    try:
        strategy = build_strategy(policy)
    except UnknownPluginError as error:
        issues.append(Issue("strategy", str(error)))
    except (TypeError, ValueError) as error:
        issues.append(Issue("options", str(error)))
    detectors = policy.drift_detectors() + list(strategy.detectors if strategy else ())
    for name in dict.fromkeys(detectors):
        path = f"drift.detectors.{name}" if name in policy.drift.detectors else "boundaries"
        try:
            create_plugin(DRIFT_DETECTORS, name, **policy.drift.detectors.get(name, {}))
        except UnknownPluginError as error:
            issues.append(Issue(path, str(error)))
        except (TypeError, ValueError) as error:
            issues.append(Issue(path, str(error)))
    if issues:
        raise PolicyError(issues, source)
