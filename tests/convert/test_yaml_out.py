"""The fast YAML writer reads back as exactly the data written (PyYAML, YAML 1.1 rules),
and quotes what YAML 1.2 / Go readers would take for numbers or booleans."""

from __future__ import annotations

from typing import Any

import yaml
from hydradeploy.convert.yaml_out import dump_all, scalar
from hypothesis import given, settings
from hypothesis import strategies as st

tricky = st.sampled_from(
    ["yes", "no", "on", "off", "y", "n", "Y", "true", "null", "~", "=", "1e3", "0x1f", "1:20", "2001-12-14", "-", "- a", "a: b",
     "#x", "x #y", "@a", "`a`", "!tag", "&a", "*a", "|", ">", "%x", "'q'", '"d"', "", " lead", "trail ", "a\nb", "tab\t", "é", "😀",
     "\ud800", "\x00", "\x7f", "\ufeff", ".inf", ".nan", "+1", "-1", "007", "1_000", "nvidia.com/gpu", "kubernetes.io/hostname"]
)  # fmt: skip
scalars = st.none() | st.booleans() | st.integers() | st.text() | tricky
data = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=10) | tricky, inner, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(
    docs=st.lists(
        st.dictionaries(st.text(max_size=8) | tricky, data, min_size=1, max_size=4),
        min_size=1,
        max_size=3,
    )
)
def test_round_trip(docs: list[dict[str, Any]]) -> None:
    text = dump_all(docs)
    text.encode("utf-8")  # always writable
    assert list(yaml.safe_load_all(text)) == docs


def test_numbers_and_yaml_1_1_booleans_are_quoted() -> None:
    for value in (
        "1e3",
        "y",
        "n",
        "yes",
        "on",
        "1000",
        "1.5",
        "0755",
        "null",
        "2001-12-14",
    ):
        assert scalar(value).startswith('"'), value
    for value in (
        "nginx:1.27",
        "tcp-80",
        "/mnt/media",
        "nvidia.com/gpu",
        "IfNotPresent",
    ):
        assert scalar(value) == value
