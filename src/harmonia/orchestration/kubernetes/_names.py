"""Kubernetes names and labels: Harmonia's names (``object_detection:v2``, ``RaspberryPi_01``)
allow characters and lengths that Kubernetes refuses, so every name written into a manifest
goes through here.

Object names are DNS-1123 labels (at most 63 lower-case letters, digits and ``-``); a
Service's name is a DNS-1035 label (it must also start with a letter). A sanitised name that
had to be shortened ends in a hash of the original, so that two long names stay apart.

>>> dns_label("object_detection_web_service")
'object-detection-web-service'
>>> dns_label("1-detector", letter_first=True)
'svc-1-detector'
>>> len(dns_label("x" * 100)), dns_label("x" * 100)[-9:]
(63, '-09ecb6eb')
>>> is_label_value("RaspberryPi_01"), is_label_value("a:b")
(True, False)
"""

from __future__ import annotations

import hashlib
import re

#: the longest DNS-1123 label, and so the longest name or label value written
MAX_LABEL = 63
#: what a Service name starting with a digit is prefixed with (DNS-1035)
LETTER_PREFIX = "svc-"

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_NOT_DNS = re.compile(r"[^a-z0-9]+")
_PORT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def dns_label(
    text: str, *, letter_first: bool = False, limit: int = MAX_LABEL, key: str | None = None
) -> str:
    """``text`` as a DNS-1123 label (DNS-1035 with ``letter_first``): lower case, every run of
    other characters turned into one ``-``, shortened to ``limit`` and then ended with a hash
    of ``key`` (default ``text``), so that names differing only past the cut stay apart."""
    key = text if key is None else key
    base = _NOT_DNS.sub("-", text.lower()).strip("-") or f"h-{_digest(key)}"
    if letter_first and not base[0].isalpha():
        base = LETTER_PREFIX + base
    if len(base) > limit:
        base = base[: limit - 9].rstrip("-") + "-" + _digest(key)
    return base


def joined_label(*parts: str) -> str:
    """One DNS-1123 label from several names (``detector`` on ``pi-1``: ``detector-pi-1``),
    hashed on the parts themselves when shortened, so different pairs stay different."""
    return dns_label("-".join(parts), key="\0".join(parts))


def is_dns_label(text: str) -> bool:
    """Whether ``text`` is a DNS-1123 label (the names of most objects, namespaces)."""
    return len(text) <= MAX_LABEL and bool(_DNS1123_LABEL.match(text))


def is_dns1035_label(text: str) -> bool:
    """Whether ``text`` is a DNS-1035 label (a Service's name: it starts with a letter)."""
    return len(text) <= MAX_LABEL and bool(_DNS1035_LABEL.match(text))


def is_dns_subdomain(text: str) -> bool:
    """Whether ``text`` is a DNS-1123 subdomain (the loosest object name, 253 characters)."""
    return len(text) <= 253 and bool(_DNS1123_SUBDOMAIN.match(text))


def is_label_value(text: str) -> bool:
    """Whether ``text`` may be a label's value (empty, or 63 of ``A-Za-z0-9-_.``)."""
    return len(text) <= MAX_LABEL and bool(_LABEL_VALUE.match(text))


def is_label_key(text: str) -> bool:
    """Whether ``text`` may be a label's key: an optional DNS subdomain prefix and ``/``, then
    a name of at most 63 characters."""
    prefix, slash, name = text.rpartition("/")
    if slash and not is_dns_subdomain(prefix):
        return False
    return len(name) <= MAX_LABEL and bool(_LABEL_NAME.match(name))


def port_name(port: int) -> str:
    """The name of a container port (an IANA service name: at most 15 characters, a letter)."""
    name = f"port-{port}"
    assert len(name) <= 15 and _PORT_NAME.match(name)
    return name
