"""Harmonia's names made into Kubernetes names: always valid, short enough, and distinct."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from harmonia.core.application import NAME_PATTERN
from harmonia.orchestration.kubernetes import dns_label, is_dns_label, joined_label
from harmonia.orchestration.kubernetes._names import (
    is_dns1035_label,
    is_label_key,
    is_label_value,
    port_name,
)

names = st.from_regex(NAME_PATTERN, fullmatch=True)


def test_rohe_names_become_readable_labels() -> None:
    assert dns_label("object_detection_web_service") == "object-detection-web-service"
    assert dns_label("RaspberryPi_01") == "raspberrypi-01"
    assert dns_label("model:v2+int8") == "model-v2-int8"
    assert joined_label("kpi_minio_service", "RaspberryPi_03") == "kpi-minio-service-raspberrypi-03"


def test_a_service_name_starts_with_a_letter() -> None:
    assert dns_label("3d-detector", letter_first=True) == "svc-3d-detector"
    assert dns_label("detector", letter_first=True) == "detector"


def test_long_names_are_cut_to_63_and_end_in_a_hash_of_the_whole() -> None:
    a, b = dns_label("x" * 70 + "a"), dns_label("x" * 70 + "b")
    assert len(a) == len(b) == 63 and a != b and a[:54] == b[:54]


@given(names, st.booleans())
def test_any_harmonia_name_becomes_a_valid_label(name: str, letter_first: bool) -> None:
    label = dns_label(name, letter_first=letter_first)
    assert is_dns_label(label)
    if letter_first:
        assert is_dns1035_label(label)


@given(names, names)
def test_any_service_and_node_join_into_a_valid_label(service: str, node: str) -> None:
    assert is_dns_label(joined_label(service, node))


def test_joined_labels_that_are_cut_stay_apart_when_the_split_differs() -> None:
    left = joined_label("s" * 40 + "-x", "n" * 40)
    right = joined_label("s" * 40, "x-" + "n" * 40)
    assert left != right and len(left) == len(right) == 63


def test_label_keys_and_values() -> None:
    assert is_label_key("app.kubernetes.io/name") and is_label_key("team")
    assert not is_label_key("a/b/c") and not is_label_key("Bad_Prefix/x") and not is_label_key("")
    assert is_label_value("") and is_label_value("Jetson_nano_01")
    assert not is_label_value("ml ops") and not is_label_value("x" * 64)


def test_port_names_are_iana_service_names() -> None:
    assert port_name(4002) == "port-4002" and len(port_name(65535)) <= 15
