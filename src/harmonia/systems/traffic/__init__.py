"""The traffic reference system: forecast PeMS vehicle flow with three models of different cost."""

from harmonia.systems import ReferenceSystem

#: registered under ``harmonia.systems`` as ``traffic``
SYSTEM = ReferenceSystem(
    name="traffic",
    summary="forecast PeMS vehicle flow (linear, SVM, LSTM)",
    models=("linear", "svm", "lstm"),
    unit="observations",
    data_help="a CSV with a 'flow' column (default: the shipped drifted test stream)",
    replay="harmonia.replay.systems:TRAFFIC",
    live="harmonia.systems.traffic.live:run",
    menus=("harmonia", "harmone"),
)
