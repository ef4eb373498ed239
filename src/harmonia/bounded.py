"""Untrusted YAML and JSON, parsed within bounds: size, nesting depth, node count, no YAML
aliases.

A parser asked for a 100,000-level nested list recurses until Python gives up; a YAML list
of a million integers takes PyYAML half a minute and gigabytes; a "billion laughs" document
expands aliases exponentially. Each is refused here before any of that work: YAML is first
read as a stream of events (no tree is built), stopping at the first bound crossed.

>>> load_yaml("a: [1, 2]")
{'a': [1, 2]}
>>> load_yaml("[[[1]]]", max_depth=2)
Traceback (most recent call last):
...
harmonia.bounded.DocumentTooComplex: nested deeper than 2 levels
"""

from __future__ import annotations

from typing import Any

import orjson
import yaml

MAX_DEPTH = 64
MAX_NODES = 20_000
MAX_BYTES = 1_000_000

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_OPENS = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSES = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


class DocumentTooComplex(ValueError):
    """A document over one of the bounds; the message names which."""


def check_size(text: str | bytes, max_bytes: int = MAX_BYTES) -> None:
    size = len(text.encode() if isinstance(text, str) else text)
    if size > max_bytes:
        raise DocumentTooComplex(f"larger than {max_bytes} bytes ({size})")


def load_yaml(
    text: str, *, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES, max_bytes: int = MAX_BYTES
) -> Any:
    """``yaml.safe_load(text)`` once the text is known to be within the bounds; raises
    `DocumentTooComplex` (a bound) or ``yaml.YAMLError`` (not YAML)."""
    check_size(text, max_bytes)
    depth = nodes = 0
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, yaml.AliasEvent):
            raise DocumentTooComplex("YAML aliases (*name) are not accepted")
        if isinstance(event, _OPENS):
            depth += 1
            if depth > max_depth:
                raise DocumentTooComplex(f"nested deeper than {max_depth} levels")
        elif isinstance(event, _CLOSES):
            depth -= 1
        if isinstance(event, yaml.NodeEvent):
            nodes += 1
            if nodes > max_nodes:
                raise DocumentTooComplex(f"more than {max_nodes} values")
    return yaml.load(text, Loader=_LOADER)


def load_json(
    body: str | bytes,
    *,
    max_depth: int = MAX_DEPTH,
    max_nodes: int = MAX_NODES,
    max_bytes: int = MAX_BYTES,
) -> Any:
    """JSON within the bounds; raises `DocumentTooComplex` or ``ValueError`` (not JSON).
    orjson refuses nesting beyond 1024 levels itself, without recursing in Python."""
    check_size(body, max_bytes)
    document = orjson.loads(body)
    check_shape(document, max_depth=max_depth, max_nodes=max_nodes)
    return document


def check_shape(document: Any, *, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES) -> None:
    """Walk ``document`` without recursion; `DocumentTooComplex` beyond a bound."""
    stack = [(document, 1)]
    nodes = 0
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if nodes > max_nodes:
            raise DocumentTooComplex(f"more than {max_nodes} values")
        if isinstance(value, dict | list):
            if depth > max_depth:
                raise DocumentTooComplex(f"nested deeper than {max_depth} levels")
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)
