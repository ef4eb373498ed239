"""QoA4ML's formats: its `MLContract` (contract schema v0.3) converts to a Harmonia
`Contract` (`harmonia.compat.qoa4ml.contract`); a QoA4ML client (and ROHE's observation
clients) registers with Harmonia as with ROHE's observation service (`routes`), and its
reports — ML, ensemble (ROHE) and resource reports — reach the store and the loops through
the AMQP bridge (`bridge`) or HTTP, mapped onto stages, services, instances and metrics
(`reports`)."""

from harmonia.compat.qoa4ml.contract import from_qoa4ml_contract, load_qoa4ml_contract

__all__ = ["from_qoa4ml_contract", "load_qoa4ml_contract"]
