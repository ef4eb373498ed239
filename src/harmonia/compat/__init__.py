"""Other systems' wire formats, so that their managed systems run against Harmonia unchanged:
`harmonia.compat.harmonica` (Harmonica's policy JSON and its API)."""
