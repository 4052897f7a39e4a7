"""Property-based: whatever the input, both front ends end in success (and then every
document is valid for the cluster's Kubernetes version) or in the one clean UserError;
the CLI then exits 2 with one line and writes nothing."""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import yaml
from convert_helpers import run_cli, validate_strict
from hydradeploy.convert.compose import load_compose
from hydradeploy.convert.emit import EmitOptions, convert
from hydradeploy.convert.oci_containers import load_podman
from hydradeploy.convert.write import render
from hydradeploy.errors import UserError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 70000) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
port_specs = st.one_of(
    st.sampled_from(
        [
            "80",
            "8080:80",
            "127.0.0.1:8080:80",
            "53:53/udp",
            "1000-1002:1000-1002",
            "127.0.0.1::80",
            "[::1]:81:80",
            "30080:80",
            "9000-9005:9000",
        ]
    ),
    st.text(alphabet="0123456789:./-udptc[]", max_size=16),
)
volume_specs = st.one_of(
    st.sampled_from(
        [
            "/srv/a:/a",
            "/srv/b:/b:ro",
            "data:/data",
            "/cache",
            "/nix/store/x:/etc/x:ro",
            "shared:/s",
            "/srv/z:/z:Z,rw",
        ]
    ),
    st.text(alphabet="/abcz:ro,Z.-_", max_size=16),
)
flag_tokens = st.one_of(
    st.sampled_from(
        [
            "--network=host",
            "--net",
            "host",
            "--device",
            "/dev/kfd",
            "--device=/dev/dri",
            "--device=nvidia.com/gpu=all",
            "--gpus",
            "all",
            "--gpus=2",
            "--cap-add=SYS_ADMIN",
            "--cap-drop",
            "ALL",
            "--privileged",
            "--memory=1g",
            "-m",
            "512m",
            "--cpus=1.5",
            "--shm-size=2g",
            "--health-cmd=true",
            "--health-interval=10s",
            "--health-timeout=3s",
            "--health-retries=2",
            "--health-start-period=1m",
            "--add-host=db:10.0.0.1",
            "--dns=1.1.1.1",
            "--tmpfs=/run:size=10m",
            "--ulimit=nofile=1",
            "--sysctl=net.ipv4.tcp_syncookies=1",
            "--label=a=b",
            "-e",
            "A=1",
            "--env=B=2",
            "--restart=always",
            "--ip=10.0.0.9",
            "--read-only",
            "-p",
            "8080:80",
            "-v",
            "/x:/y",
        ]
    ),
    st.text(alphabet=string.ascii_letters + string.digits + "-=/:.", max_size=14),
)
env_maps = st.dictionaries(
    st.sampled_from(
        ["TZ", "DB_PASSWORD", "API_KEY", "URL", "X", "HSA_OVERRIDE_GFX_VERSION"]
    )
    | st.text(string.ascii_uppercase + "_", min_size=1, max_size=10),
    st.text(max_size=20),
    max_size=4,
)
names = st.sampled_from(
    ["web", "Web", "db", "ollama", "my_app", "9x", "a" * 70]
) | st.text(min_size=1, max_size=12)
containers = st.fixed_dictionaries(
    {
        "image": st.sampled_from(["nginx:1.27", "rocm/pytorch", "ollama/ollama"])
        | st.text(max_size=10)
    },
    optional={
        "ports": st.lists(port_specs, max_size=3),
        "volumes": st.lists(volume_specs, max_size=3),
        "extraOptions": st.lists(flag_tokens, max_size=6),
        "environment": env_maps,
        "environmentFiles": st.lists(
            st.sampled_from(["/run/a.env", "/run/b.env"]), max_size=2
        ),
        "devices": st.lists(
            st.sampled_from(
                [
                    "/dev/kfd",
                    "/dev/dri",
                    "nvidia.com/gpu=0",
                    "/dev/ttyUSB0:/dev/zigbee",
                    "dri",
                ]
            ),
            max_size=2,
        ),
        "user": st.none() | st.sampled_from(["1000", "1000:100", "nobody", "x:y"]),
        "hostname": st.none() | st.text(max_size=10),
        "labels": st.dictionaries(
            st.text(max_size=10), st.text(max_size=10), max_size=2
        ),
        "capabilities": st.dictionaries(
            st.sampled_from(["NET_ADMIN", "SYS_TIME"]),
            st.none() | st.booleans(),
            max_size=2,
        ),
        "dependsOn": st.lists(st.sampled_from(["web", "db", "ghost"]), max_size=2),
        "autoStart": st.booleans(),
        "pull": st.sampled_from(["always", "missing", "never", "newer", "sometimes"]),
        "cmd": st.lists(st.text(max_size=8), max_size=3),
        "entrypoint": st.none() | st.text(max_size=8),
        "privileged": st.booleans(),
        "bogus": json_values,
    },
)
podman_inputs = st.one_of(
    json_values,
    st.dictionaries(names, containers | json_values, max_size=4),
    st.dictionaries(names, containers, min_size=1, max_size=4),
)


def _emit_and_validate(source: Any) -> None:
    conv = convert(
        source, EmitOptions(namespace="prop", host=source.host, gpu_count=lambda v: 2)
    )
    render(conv.files, "prop")
    for docs in conv.files.values():
        for doc in docs:
            validate_strict(doc)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=podman_inputs, host=st.none() | st.just("hydra-ai"))
def test_podman_front_end_succeeds_validly_or_fails_cleanly(
    data: Any, host: str | None
) -> None:
    try:
        source = load_podman(data, "prop.json", host)
    except UserError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("prop.json")
        return
    _emit_and_validate(source)


compose_services = st.fixed_dictionaries(
    {},
    optional={
        "image": st.sampled_from(["nginx:1.27", "${IMAGE:-x}", "$BAD{", ""])
        | st.text(max_size=8),
        "ports": st.lists(
            port_specs
            | st.integers(-1, 70000)
            | st.fixed_dictionaries(
                {"target": st.integers(0, 70000)},
                optional={
                    "published": port_specs,
                    "protocol": st.sampled_from(["tcp", "udp", "x"]),
                },
            ),
            max_size=3,
        ),
        "volumes": st.lists(
            volume_specs
            | st.fixed_dictionaries(
                {
                    "type": st.sampled_from(["bind", "volume", "tmpfs", "npipe"]),
                    "target": st.sampled_from(["/a", "rel"]),
                },
                optional={"source": st.sampled_from(["./d", "vol", "/abs"])},
            ),
            max_size=3,
        ),
        "environment": env_maps | st.lists(st.text(max_size=10), max_size=3),
        "command": st.text(max_size=15) | st.lists(st.text(max_size=5), max_size=3),
        "deploy": json_values
        | st.just(
            {
                "resources": {
                    "limits": {"cpus": "0.5", "memory": "1g"},
                    "reservations": {
                        "devices": [{"capabilities": ["gpu"], "count": "all"}]
                    },
                }
            }
        ),
        "healthcheck": json_values
        | st.just({"test": ["CMD", "true"], "interval": "5s"}),
        "depends_on": st.lists(st.sampled_from(["web", "db", "ghost"]), max_size=2)
        | json_values,
        "network_mode": st.sampled_from(["host", "bridge", "service:web"]),
        "profiles": st.lists(st.sampled_from(["a", "b"]), max_size=1),
        "extends": st.sampled_from(["web", "db", "nope"]),
        "devices": st.lists(
            st.sampled_from(["/dev/kfd", "/dev/dri", "nope"]), max_size=2
        ),
        "user": st.sampled_from(["1000:1000", "app"]),
        "other": json_values,
    },
)
compose_docs = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {
            "services": st.dictionaries(
                st.sampled_from(["web", "db", "Web_1", "x"]) | st.text(max_size=6),
                compose_services | json_values,
                max_size=3,
            )
        },
        optional={
            "volumes": st.just({"vol": {}, "data": None}) | json_values,
            "name": st.text(max_size=8),
        },
    ),
)


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(doc=compose_docs, raw=st.none() | st.text(max_size=40))
def test_compose_front_end_succeeds_validly_or_fails_cleanly(
    tmp_path: Path, doc: Any, raw: str | None
) -> None:
    path = tmp_path / "compose.yml"
    path.write_text(raw if raw is not None else yaml.safe_dump(doc))
    try:
        source = load_compose([path], environ={}, host="hydra-ai", project_dir="/srv/p")
    except UserError as exc:
        assert (
            "\n" not in str(exc)
            and str(path) in str(exc)
            or str(exc).startswith("compose-to-k8s")
        )
        return
    _emit_and_validate(source)


BAD_INPUTS: list[tuple[str, str]] = [
    ("bad.json", "{not json"),
    ("list.json", "[1, 2]"),
    ("nonobject.json", json.dumps({"web": "nginx"})),
    ("badport.json", json.dumps({"web": {"image": "nginx", "ports": ["80:80:80:80"]}})),
    (
        "badvol.json",
        json.dumps({"web": {"image": "nginx", "volumes": ["/a:/b:bogus"]}}),
    ),
    ("badtype.json", json.dumps({"web": {"image": "nginx", "environment": {"A": 1}}})),
    ("noimage.json", json.dumps({"web": {"ports": ["80"]}})),
    (
        "badflag.json",
        json.dumps({"web": {"image": "nginx", "extraOptions": ["--cpus=many"]}}),
    ),
]


def test_cli_bad_input_one_line_exit_2_nothing_written(tmp_path: Path) -> None:
    for name, text in BAD_INPUTS:
        src = tmp_path / name
        src.write_text(text)
        out = tmp_path / f"out-{name}"
        result = run_cli(
            "convert",
            "podman-to-k8s",
            "--json",
            str(src),
            "--out",
            str(out),
            "--secrets-dir",
            str(tmp_path / "s"),
        )
        assert result.returncode == 2, (name, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"hydradeploy: error: {src}"), (
            name,
            result.stderr,
        )
        assert "Traceback" not in result.stderr
        assert not out.exists() and not (tmp_path / "s").exists()
    compose = tmp_path / "c.yml"
    compose.write_text("services:\n  web:\n    image: x\n    ports: ['80/icmp']\n")
    result = run_cli(
        "convert", "compose-to-k8s", str(compose), "--out", str(tmp_path / "co")
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "service 'web': key 'ports'[0]: '80/icmp': unknown protocol" in result.stderr
    usage = run_cli("convert", "podman-to-k8s", "--out", str(tmp_path / "u"))
    assert (
        usage.returncode == 2
        and "exactly one of --json FILE or --flake" in usage.stderr
    )


valid_ports = st.sampled_from(
    [
        "80",
        "8080:80",
        "127.0.0.1:8080:80",
        "53:53/udp",
        "1000-1002:1000-1002",
        "127.0.0.1::80",
        "[::1]:81:80",
        "30080:80",
        "192.0.2.1:25:25",
    ]
)
valid_volumes = st.sampled_from(
    [
        "/srv/a:/a",
        "/srv/b:/b:ro",
        "data:/data",
        "/cache",
        "/nix/store/x:/etc/x:ro",
        "shared:/s",
        "/srv/z:/z:Z,rw",
    ]
)
valid_flags = st.sampled_from(
    [["--network=host"], ["--device", "/dev/kfd"], ["--device=nvidia.com/gpu=all"], ["--gpus", "2"], ["--cap-add=SYS_ADMIN"],
     ["--privileged"], ["--memory=1g", "--cpus=0.5"], ["--shm-size=2g"], ["--health-cmd=true", "--health-retries=2"],
     ["--add-host=db:10.0.0.1"], ["--dns=1.1.1.1", "--dns=9.9.9.9", "--dns=8.8.8.8"], ["--tmpfs=/run:size=10m"],
     ["--sysctl=kernel.msgmax=1"], ["--label=traefik.enable=true"], ["-e", "TOKEN=abc"], ["--read-only"], ["--ulimit", "nofile=1"]]
)  # fmt: skip
valid_containers = st.fixed_dictionaries(
    {
        "image": st.sampled_from(
            ["nginx:1.27", "rocm/pytorch:latest", "ollama/ollama:0.5.7"]
        )
    },
    optional={
        "ports": st.lists(valid_ports, max_size=4),
        "volumes": st.lists(valid_volumes, max_size=3, unique=True),
        "extraOptions": st.lists(valid_flags, max_size=4).map(
            lambda groups: [t for g in groups for t in g]
        ),
        "environment": env_maps,
        "environmentFiles": st.lists(
            st.sampled_from(["/run/a.env", "/run/b.env"]), max_size=2, unique=True
        ),
        "devices": st.lists(
            st.sampled_from(
                ["/dev/kfd", "/dev/dri", "nvidia.com/gpu=0", "/dev/ttyUSB0:/dev/zigbee"]
            ),
            max_size=2,
        ),
        "user": st.sampled_from(["1000", "1000:100", "nobody"]),
        "hostname": st.text(max_size=10),
        "dependsOn": st.lists(st.sampled_from(["web", "db"]), max_size=2),
        "autoStart": st.booleans(),
        "capabilities": st.dictionaries(
            st.sampled_from(["NET_ADMIN", "SYS_TIME"]),
            st.none() | st.booleans(),
            max_size=2,
        ),
    },
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.dictionaries(
        st.sampled_from(["web", "db", "Web", "my_app", "9x"]),
        valid_containers,
        min_size=1,
        max_size=4,
    )
)
def test_valid_mixes_always_convert_to_valid_objects(data: dict[str, Any]) -> None:
    for spec in (
        data.values()
    ):  # every dependency exists in this strategy's name pool only when present
        spec["dependsOn"] = [d for d in spec.get("dependsOn", []) if d in data]
    source = load_podman(data, "prop.json", "hydra-ai")
    _emit_and_validate(source)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=podman_inputs)
def test_cli_random_input_exit_0_or_one_line_exit_2(
    tmp_path_factory: Any, data: Any
) -> None:
    """A few real subprocess runs: the whole CLI path, exit codes and the file system."""
    tmp = tmp_path_factory.mktemp("cli")
    src = tmp / "in.json"
    src.write_text(json.dumps(data))
    out, secrets = tmp / "out", tmp / "secrets"
    result = run_cli(
        "convert",
        "podman-to-k8s",
        "--json",
        str(src),
        "--host",
        "hydra-ai",
        "--out",
        str(out),
        "--secrets-dir",
        str(secrets),
        "-q",
    )
    assert "Traceback" not in result.stderr
    if result.returncode == 0:
        for path in out.rglob("*.yaml"):
            for doc in yaml.safe_load_all(path.read_text()):
                validate_strict(doc)
    else:
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and result.stderr.startswith(
            "hydradeploy: error: "
        )
        assert not out.exists() and not secrets.exists()
