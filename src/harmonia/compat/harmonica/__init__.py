"""Harmonica compatibility: its policy JSON converted to Harmonia's (`policy`), and its three
HTTP routes answering as Harmonica's ACP server does (`routes`).

Nothing is imported here: `harmonia.policies` reads Harmonica's policies without the server.
"""
