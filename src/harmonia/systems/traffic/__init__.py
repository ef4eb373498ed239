"""The traffic reference system: forecast PeMS vehicle flow with three models of different cost."""
