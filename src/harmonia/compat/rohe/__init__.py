"""ROHE's formats: its `ServiceContract` YAML converts to a Harmonia `Contract`
(`harmonia.compat.rohe.contract`)."""

from harmonia.compat.rohe.contract import from_rohe_contract, load_rohe_contract

__all__ = ["from_rohe_contract", "load_rohe_contract"]
