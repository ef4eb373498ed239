"""The pure core: domain types, policies, conditions, scoring, knowledge and the MAPE-K engine.

Nothing here performs I/O; time and randomness are injected.
"""

from harmonia.core.actions import Action, ActionKind, Decision
from harmonia.core.application import Application, Service, Stage
from harmonia.core.conditions import (
    Comparison,
    Condition,
    Evaluation,
    Junction,
    Operand,
    parse_condition,
)
from harmonia.core.contracts import SLO, Contract, SLOResult, evaluate
from harmonia.core.drift import DriftDetector, DriftScore
from harmonia.core.engine import Engine
from harmonia.core.errors import (
    ConditionSyntaxError,
    EnergyMeterUnavailable,
    HarmoniaError,
    Issue,
    PolicyError,
    UnknownPluginError,
)
from harmonia.core.knowledge import Knowledge, ModelProfile, fingerprint
from harmonia.core.monitor import WindowSummary, summarize
from harmonia.core.pipeline import PipelineSummary, summarize_pipeline
from harmonia.core.policy import (
    Boundary,
    Cooldown,
    DriftSettings,
    Objective,
    Policy,
    Tactic,
    Window,
    parse_policy,
)
from harmonia.core.scoring import normalize_energy, score
from harmonia.core.strategies import (
    HarmonEStrategy,
    Planned,
    SingleStrategy,
    Situation,
    Strategy,
    SwitchStrategy,
    Trigger,
    Violation,
)
from harmonia.core.telemetry import TelemetrySample
from harmonia.core.versions import ModelVersion

__all__ = [
    "SLO",
    "Action",
    "ActionKind",
    "Application",
    "Boundary",
    "Comparison",
    "Condition",
    "ConditionSyntaxError",
    "Contract",
    "Cooldown",
    "Decision",
    "DriftDetector",
    "DriftScore",
    "DriftSettings",
    "EnergyMeterUnavailable",
    "Engine",
    "Evaluation",
    "HarmonEStrategy",
    "HarmoniaError",
    "Issue",
    "Junction",
    "Knowledge",
    "ModelProfile",
    "ModelVersion",
    "Objective",
    "Operand",
    "PipelineSummary",
    "Planned",
    "Policy",
    "PolicyError",
    "SLOResult",
    "Service",
    "SingleStrategy",
    "Situation",
    "Stage",
    "Strategy",
    "SwitchStrategy",
    "Tactic",
    "TelemetrySample",
    "Trigger",
    "UnknownPluginError",
    "Violation",
    "Window",
    "WindowSummary",
    "evaluate",
    "fingerprint",
    "normalize_energy",
    "parse_condition",
    "parse_policy",
    "score",
    "summarize",
    "summarize_pipeline",
]
