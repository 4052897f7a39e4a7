"""switch-to-configuration's unit rules (lab/guest/units.py), without root: units are
compared parsed, as NixOS's switch-to-configuration-ng does, and the lab's k3s unit
changes exactly when what k3s runs changes."""

from __future__ import annotations

from hydradeploy.lab import closure
from hydradeploy.lab.guest import units

BASE = """[Unit]
Description=k3s
After=network-online.target
X-Restart-Triggers=abc

[Service]
Type=exec
ExecStart=/run/current-system/lib/hydra-lab/k3s-sim

[Install]
WantedBy=multi-user.target
"""


def test_equal_ignores_layout_install_and_description() -> None:
    same = BASE.replace("Description=k3s", "Description=k3s, renamed")
    same = same.replace("WantedBy=multi-user.target", "WantedBy=default.target")
    same = "# a comment\n" + same.replace("Type=exec", "Type = exec")
    assert units.equal(units.parse(BASE), units.parse(same))


def test_changed_service_keys_or_restart_triggers_need_a_restart() -> None:
    for old, new in (("Type=exec", "Type=notify"), ("X-Restart-Triggers=abc", "X-Restart-Triggers=abd"),
                     ("After=network-online.target", "After=network.target")):  # fmt: skip
        assert not units.equal(
            units.parse(BASE), units.parse(BASE.replace(old, new))
        ), new


def test_an_empty_value_clears_earlier_ones() -> None:
    text = BASE.replace("ExecStart=/run", "ExecStart=/old\nExecStart=\nExecStart=/run")
    assert units.equal(units.parse(BASE), units.parse(text))


def settings(**over: object) -> dict[str, object]:
    base: dict[str, object] = {"role": "agent", "node_name": "w1", "labels": {"a": "b"},
                               "fault": None, "revision": "1"}  # fmt: skip
    return {**base, **over}


def test_k3s_unit_changes_with_k3s_settings_not_with_the_build_number() -> None:
    def unit(**over: object) -> str:
        s = settings(**over)
        return closure.k3s_unit(s, closure.k3s_digest(s))

    assert unit(revision="1") == unit(revision="7")
    assert unit(sshd_revision="3") == unit()  # sshd's config is not k3s's
    assert unit(fault="network") == unit() == unit(fault="sshd")  # not k3s faults
    assert unit(fault="labels") != unit()
    assert unit(labels={"a": "c"}) != unit()
    assert "Type=exec" in unit() and "Type=notify" in unit(role="server")
