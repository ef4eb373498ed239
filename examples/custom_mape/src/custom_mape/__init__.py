"""A template for your own MAPE logic, as a Harmonia strategy plugin."""

from custom_mape.strategy import CustomMapeStrategy

__all__ = ["CustomMapeStrategy"]
