"""The compose front end: YAML 1.2 scalars, interpolation, merging, extends, profiles,
the long forms, GPU reservations, and clean errors."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from convert_helpers import validate_strict
from hydradeploy.convert.compose import load_compose
from hydradeploy.convert.emit import EmitOptions, convert
from hydradeploy.convert.model import Container, GpuRequest, Mount, Port
from hydradeploy.errors import UserError


def _write(tmp_path: Path, text: str, name: str = "compose.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def _load(
    tmp_path: Path, text: str, env: dict[str, str] | None = None, **kw: Any
) -> dict[str, Container]:
    source = load_compose([_write(tmp_path, text)], environ=env or {}, **kw)
    return {c.source_name: c for c in source.containers}


def test_yaml_1_2_scalars_ports_are_not_sexagesimal(tmp_path: Path) -> None:
    c = _load(tmp_path, """
        services:
          ssh:
            image: x
            ports: [22:22, 2222:22]
            environment: {DEBUG: yes, ON: on}
    """)["ssh"]  # fmt: skip
    assert c.ports == [Port(22, "TCP", 22), Port(22, "TCP", 2222)]
    assert c.environment == {"DEBUG": "yes", "ON": "on"}


def test_interpolation_dotenv_and_shell_environment(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TAG=1.0\nPORT=8080\n")
    c = _load(tmp_path, """
        services:
          web:
            image: nginx:${TAG}
            ports: ["${PORT}:80"]
            environment:
              GREETING: ${GREETING:-hello}
              COST: $$5
    """, env={"TAG": "2.0"})["web"]  # fmt: skip
    assert c.image == "nginx:2.0"  # the shell wins over .env, as in compose
    assert c.ports == [Port(80, "TCP", 8080)]
    assert c.environment == {"GREETING": "hello", "COST": "$5"}


def test_dotenv_values_interpolate_from_the_shell(tmp_path: Path) -> None:
    # compose-go dotenv/env.go GetEnvFromFile (e70e961): `${VAR}` in .env looks in the
    # shell environment first, then in the keys above it
    (tmp_path / ".env").write_text("DATA=${BASE}/data\nIMAGE=app:${TAG:-1}\n")
    c = _load(tmp_path, """
        services:
          web: {image: "${IMAGE}", environment: {DIR: "${DATA}"}}
    """, env={"BASE": "/srv"})["web"]  # fmt: skip
    assert c.image == "app:1"
    assert c.environment == {"DIR": "/srv/data"}


def test_project_name_normalised_as_compose_does(tmp_path: Path) -> None:
    # compose-go loader/loader.go NormalizeProjectName (e70e961): lower case, only
    # [a-z0-9_-] kept, leading `_`/`-` trimmed; the folder name and `name:` are
    # normalised, a COMPOSE_PROJECT_NAME that is not normal is an error
    stack = tmp_path / "My.Stack"
    stack.mkdir()
    path = _write(stack, "services:\n  web: {image: x}\n")
    assert load_compose([path], environ={}).project == "mystack"
    named = _write(
        stack, "name: _Media.Box\nservices:\n  web: {image: x}\n", "named.yml"
    )
    assert load_compose([named], environ={}).project == "mediabox"
    with pytest.raises(
        UserError, match="COMPOSE_PROJECT_NAME 'My Stack': invalid project name"
    ):
        load_compose([path], environ={"COMPOSE_PROJECT_NAME": "My Stack"})


def test_dependency_on_a_disabled_profile_service(tmp_path: Path) -> None:
    # compose-spec 15-profiles.md: zot depends on bar, which no active profile enables:
    # "the model is invalid"; compose-go loader/validate.go skips it with required: false
    text = """
        services:
          bar: {image: bar, profiles: [test]}
          zot: {image: zot, depends_on: [bar]}
          opt: {image: opt, depends_on: {bar: {condition: service_started, required: false}}}
    """
    with pytest.raises(
        UserError, match="service 'bar' is not enabled by the active profiles"
    ):
        _load(tmp_path, text)
    cs = _load(tmp_path, text, profiles={"test"})
    assert cs["zot"].depends_on == ["bar"]
    spec = text.replace("          zot: {image: zot, depends_on: [bar]}\n", "")
    assert _load(tmp_path, spec)["opt"].depends_on == []


def test_string_command_split_as_compose_go_shellwords(tmp_path: Path) -> None:
    # compose-go types/command.go (e70e961) → mattn/go-shellwords v1.0.12 Parse: a
    # backslash keeps the next character even in double quotes; `&&`, `;`, `|`, `<`,
    # `>` end the command and the rest is dropped; `(` not after `$` is an error
    cs = _load(tmp_path, r"""
        services:
          esc: {image: x, command: 'printf "a\tb"'}
          cut: {image: x, command: "migrate && serve --port 80"}
          sub: {image: x, command: "echo $$(date) `id -u`"}
    """)  # fmt: skip
    assert cs["esc"].cmd == ("printf", "atb")
    assert cs["cut"].cmd == ("migrate",)
    assert any("'&& serve --port 80' is dropped" in n.message for n in cs["cut"].notes)
    assert cs["sub"].cmd == ("echo", "$(date)", "`id -u`")
    with pytest.raises(UserError, match="key 'command': invalid command line string"):
        _load(tmp_path, "services:\n  a: {image: x, command: 'echo (x)'}\n")


def test_short_volume_options_as_compose_reads_them(tmp_path: Path) -> None:
    # compose-go format/volume.go ParseVolume (e70e961): ro/rw in order, the last wins;
    # an unknown option is ignored, not an error
    c = _load(tmp_path, """
        services:
          a: {image: x, volumes: ["data:/d:ro,rw", "logs:/l:rw,ro", "cache:/c:bogus"]}
        volumes: {data: {}, logs: {}, cache: {}}
    """)["a"]  # fmt: skip
    assert [(m.target, m.read_only) for m in c.mounts] == [
        ("/d", False), ("/l", True), ("/c", False),
    ]  # fmt: skip
    assert any("'bogus' is unknown; compose ignores it" in n.message for n in c.notes)


def test_booleans_cast_after_interpolation_as_compose_does(tmp_path: Path) -> None:
    # compose-go loader/interpolate.go interpolateTypeCastMapping + toBoolean (e70e961)
    cs = _load(tmp_path, """
        services:
          a:
            image: x
            privileged: "${PRIV:-false}"
            read_only: "yes"
            volumes: [{type: volume, source: d, target: /d, read_only: "true"}]
            healthcheck: {test: [CMD, "true"], disable: "${NOCHECK:-true}"}
        volumes: {d: {}}
    """)  # fmt: skip
    a = cs["a"]
    assert (a.privileged, a.read_only_root, a.healthcheck) == (False, True, None)
    assert a.mounts[0].read_only
    with pytest.raises(UserError, match="key 'privileged': invalid boolean: sometimes"):
        _load(tmp_path, "services:\n  a: {image: x, privileged: sometimes}\n")


def test_required_variable_is_a_clean_error(tmp_path: Path) -> None:
    with pytest.raises(
        UserError,
        match=r"compose.yml: services.db.environment.PW: required variable PW: set it",
    ):
        _load(tmp_path, """
            services:
              db: {image: pg, environment: {PW: "${PW:?set it}"}}
        """)  # fmt: skip


def test_long_forms_and_list_environment(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    c = _load(tmp_path, """
        services:
          app:
            image: x
            ports:
              - {target: 80, published: "8080", host_ip: 127.0.0.1, protocol: tcp}
              - {target: 53, protocol: udp}
            volumes:
              - {type: bind, source: ./data, target: /data, read_only: true}
              - {type: volume, source: cache, target: /cache}
              - {type: tmpfs, target: /tmp, tmpfs: {size: 64m}}
            environment: [A=1, B=two=2]
            command: python -m app --port "8 0"
            healthcheck: {test: "curl -f localhost", interval: 1m, retries: 2}
        volumes: {cache: {}}
    """, project_dir="/srv/app")["app"]  # fmt: skip
    # no published port: compose lets the engine pick one (a NodePort here)
    assert c.ports == [
        Port(80, "TCP", 8080, "127.0.0.1"),
        Port(53, "UDP", random_host_port=True),
    ]
    assert c.mounts == [
        Mount("bind", "/data", "/srv/app/data", read_only=True),
        Mount("volume", "/cache", "cache"),
        Mount("tmpfs", "/tmp", size="64Mi"),
    ]
    assert c.environment == {"A": "1", "B": "two=2"}
    assert c.cmd == ("python", "-m", "app", "--port", "8 0")
    assert c.healthcheck is not None and c.healthcheck.command == (
        "/bin/sh",
        "-c",
        "curl -f localhost",
    )
    assert (c.healthcheck.interval_s, c.healthcheck.retries) == (60, 2)


def test_gpu_reservations_runtime_and_gpus_key(tmp_path: Path) -> None:
    cs = _load(tmp_path, """
        services:
          one:
            image: x
            deploy: {resources: {reservations: {devices: [{driver: nvidia, count: 1, capabilities: [gpu]}]}}}
          ids:
            image: x
            deploy: {resources: {reservations: {devices: [{capabilities: [gpu], device_ids: ["0", "1"]}]}}}
          every:
            image: x
            gpus: all
          runtime:
            image: x
            runtime: nvidia
            environment: {NVIDIA_VISIBLE_DEVICES: "0"}
          rocm:
            image: rocm/pytorch
            devices: [/dev/kfd, /dev/dri]
    """)  # fmt: skip
    assert [g.count for g in cs["one"].gpus] == [1]
    assert [g.count for g in cs["ids"].gpus] == [2]
    assert [g.count for g in cs["every"].gpus] == [None]
    assert [g.count for g in cs["runtime"].gpus] == [1]
    assert cs["rocm"].gpus == [GpuRequest("amd", None, "devices /dev/kfd, /dev/dri")]


def test_gpu_reservation_capabilities_as_the_engine_matches_them(
    tmp_path: Path,
) -> None:
    # moby daemon/nvidia_linux.go (18a2f3f0): NVIDIA's driver holds gpu, nvidia, compute,
    # compat32, graphics, utility, video, display; AMD's gpu, amd
    cs = _load(tmp_path, """
        services:
          nv:
            image: x
            deploy: {resources: {reservations: {devices: [{capabilities: [compute, utility], count: 1}]}}}
          amd:
            image: x
            deploy: {resources: {reservations: {devices: [{capabilities: [amd]}]}}}
          tpu:
            image: x
            deploy: {resources: {reservations: {devices: [{capabilities: [tpu]}]}}}
    """)  # fmt: skip
    assert [(g.vendor, g.count) for g in cs["nv"].gpus] == [("nvidia", 1)]
    assert [(g.vendor, g.count) for g in cs["amd"].gpus] == [("amd", None)]
    assert cs["tpu"].gpus == []


def test_runtime_nvidia_visible_devices_as_the_toolkit_reads_them(
    tmp_path: Path,
) -> None:
    # nvidia-container-toolkit cuda_image.go DevicesFromEnvvars: empty or void is no GPU
    cs = _load(tmp_path, """
        services:
          void: {image: x, runtime: nvidia, environment: {NVIDIA_VISIBLE_DEVICES: void}}
          empty: {image: x, runtime: nvidia, environment: {NVIDIA_VISIBLE_DEVICES: ""}}
          two: {image: x, runtime: nvidia, environment: {NVIDIA_VISIBLE_DEVICES: "0, 1"}}
    """)  # fmt: skip
    assert cs["void"].gpus == [] and cs["empty"].gpus == []
    assert [g.count for g in cs["two"].gpus] == [2]


def test_extra_hosts_as_compose_go_reads_them(tmp_path: Path) -> None:
    # compose-go types/hostList.go (e70e961): `=` or `:`, brackets off IPv6, IP lists
    cs = _load(tmp_path, """
        services:
          short: {image: x, extra_hosts: ["v6=[::1]", "multi=10.0.0.1,10.0.0.2"]}
          long: {image: x, extra_hosts: {db: ["10.0.0.5", "10.0.0.6"]}}
    """)  # fmt: skip
    assert cs["short"].add_hosts == [
        ("multi", "10.0.0.1"), ("multi", "10.0.0.2"), ("v6", "::1"),
    ]  # fmt: skip
    assert cs["long"].add_hosts == [("db", "10.0.0.5"), ("db", "10.0.0.6")]


def test_gpu_count_and_device_ids_together_are_refused(tmp_path: Path) -> None:
    # compose-go validation/validation.go checkDeviceRequest (e70e961)
    with pytest.raises(
        UserError, match='"count" and "device_ids" attributes are exclusive'
    ):
        _load(tmp_path, """
            services:
              a: {image: x, gpus: [{count: 1, device_ids: ["0"]}]}
        """)  # fmt: skip


def test_merged_volumes_are_unique_by_target(tmp_path: Path) -> None:
    # compose-spec 13-merge.md "Unique resources": foo:/work then bar:/work is bar:/work
    base = _write(
        tmp_path,
        "services:\n  a:\n    image: x\n    volumes: [foo:/work, /srv/l:/logs]\nvolumes: {foo: {}, bar: {}}\n",
    )
    over = _write(
        tmp_path, "services:\n  a:\n    volumes: [bar:/work]\n", "override.yml"
    )
    (c,) = load_compose([base, over], environ={}).containers
    assert [(m.source, m.target) for m in c.mounts] == [
        ("bar", "/work"),
        ("/srv/l", "/logs"),
    ]


def test_reset_and_override_tags_as_compose_merges_them(tmp_path: Path) -> None:
    # compose-spec 13-merge.md "Reset value" / "Replace value" (170098ba)
    base = _write(
        tmp_path,
        "services:\n  app:\n    image: x\n    ports: ['8080:80']\n    environment: {FOO: BAR, KEEP: '1'}\n    dns: [1.1.1.1]\n",
    )
    over = _write(
        tmp_path,
        "services:\n  app:\n    ports: !override ['8443:443']\n    environment: {FOO: !reset null}\n    dns: !reset []\n",
        "override.yml",
    )
    (c,) = load_compose([base, over], environ={}).containers
    assert [(p.container_port, p.host_port) for p in c.ports] == [(443, 8443)]
    assert c.environment == {"KEEP": "1"}
    assert c.dns == []
    gone = _write(
        tmp_path, "services:\n  app: !reset null\n  other: {image: y}\n", "gone.yml"
    )
    assert [
        c.source_name for c in load_compose([base, gone], environ={}).containers
    ] == ["other"]


def test_extends_inherits_depends_on(tmp_path: Path) -> None:
    # compose-go loader/extends.go (e70e961) deletes only `extends` from the merged
    # service; the spec leaves declaring the dependencies to the author
    cs = _load(tmp_path, """
        services:
          db: {image: pg}
          base: {image: app, depends_on: [db]}
          web: {extends: {service: base}}
    """)  # fmt: skip
    assert cs["web"].depends_on == ["db"]


def test_several_files_merge_like_compose(tmp_path: Path) -> None:
    base = _write(
        tmp_path,
        "services:\n  web:\n    image: nginx:1\n    ports: ['80:80']\n    environment: {A: '1', B: '1'}\n",
    )
    override = _write(
        tmp_path,
        "services:\n  web:\n    image: nginx:2\n    ports: ['443:443']\n    environment: [B=2]\n",
        "override.yml",
    )
    (web,) = load_compose([base, override], environ={}).containers
    assert web.image == "nginx:2"
    assert [p.host_port for p in web.ports] == [80, 443]
    assert web.environment == {"A": "1", "B": "2"}


def test_extends_profiles_and_depends_on(tmp_path: Path) -> None:
    source = load_compose(
        [
            _write(
                tmp_path,
                """
                services:
                  base: {image: app:1, environment: {A: "1"}, cap_drop: [ALL]}
                  worker: {extends: base, command: [work], depends_on: {db: {condition: service_healthy}}}
                  db: {image: pg}
                  debug: {image: busybox, profiles: [debug]}
            """,
            )
        ],
        environ={},
    )
    cs = {c.source_name: c for c in source.containers}
    assert set(cs) == {"base", "worker", "db"}
    assert (
        cs["worker"].image == "app:1"
        and cs["worker"].environment == {"A": "1"}
        and cs["worker"].cap_drop == ["ALL"]
    )
    assert cs["worker"].depends_on == ["db"]
    assert any("debug" in n.message for n in source.notes)
    with_profile = load_compose(
        [tmp_path / "compose.yml"], environ={}, profiles={"debug"}
    )
    assert "debug" in {c.source_name for c in with_profile.containers}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("services: [a, b]", "key 'services': must be a mapping"),
        (
            "services:\n  a: {image: x, ports: ['99999:80']}",
            "service 'a': key 'ports'[0]: '99999:80'",
        ),
        (
            "services:\n  a: {image: x, volumes: ['data:/d']}",
            "named volume 'data' is not declared",
        ),
        (
            "services:\n  a: {image: x, depends_on: [ghost]}",
            "key 'depends_on': unknown service 'ghost'",
        ),
        ("services:\n  a: {ports: ['80']}", "key 'image': missing"),
        (
            "services:\n  a: {image: x, deploy: {resources: {limits: {memory: lots}}}}",
            "deploy.resources.limits.memory",
        ),
        (
            "services:\n  a: {image: x, healthcheck: {test: [WHAT, x]}}",
            "healthcheck.test",
        ),
        ("services:\n  a: {extends: a}", "cycle"),
        ("services:\n  a: {image: x\n", "malformed YAML"),
        ("- 1\n- 2", "top level must be a mapping"),
    ],
)
def test_bad_input_is_one_clean_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(
        UserError,
        match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\("),
    ):
        load_compose([_write(tmp_path, text)], environ={})


def test_example_stack_emits_valid_objects(repo: Path) -> None:
    source = load_compose(
        [repo / "hosts/examples/compose/docker-compose.yml"],
        environ={},
        host="hydra-ai",
        project_dir="/srv/ai-system",
        profiles={"speech"},
    )
    conv = convert(
        source,
        EmitOptions(namespace="ai-system", host="hydra-ai", gpu_count=lambda v: 2),
    )
    kinds = {d["kind"] for docs in conv.files.values() for d in docs}
    # ConfigMaps: the example's prometheus.yml and qdrant.yaml sit beside the compose file
    assert kinds == {"Namespace", "Service", "Deployment", "StatefulSet", "ConfigMap"}
    for docs in conv.files.values():
        for doc in docs:
            validate_strict(doc)
    speech = conv.files["ai-system/speech.yaml"]
    pod = speech[-1]["spec"]["template"]["spec"]
    assert pod["runtimeClassName"] == "nvidia" and pod["containers"][0]["resources"][
        "limits"
    ] == {"nvidia.com/gpu": 2}
    assert speech[-1]["spec"]["strategy"] == {"type": "Recreate"}
    assert [p["containerPort"] for p in pod["containers"][0]["ports"]] == [
        9000,
        9001,
        9002,
    ]


def test_replicated_service_shares_its_volume_instead_of_one_claim_per_replica(
    tmp_path: Path,
) -> None:
    path = _write(tmp_path, """
        services:
          api: {image: x, deploy: {replicas: 3}, volumes: [uploads:/u]}
          db: {image: pg, volumes: [pg:/var/lib/postgresql/data]}
          1: {image: numbered}
        volumes: {uploads: {}, pg: {}}
    """)  # fmt: skip
    source = load_compose([path], environ={})
    assert {c.source_name for c in source.containers} == {"api", "db", "1"}
    conv = convert(source, EmitOptions(namespace="p"))
    api = conv.files["p/api.yaml"][-1]
    assert api["kind"] == "Deployment" and api["spec"]["replicas"] == 3
    assert [c["metadata"]["name"] for c in conv.files["p/_volumes.yaml"]] == ["uploads"]
    assert conv.files["p/db.yaml"][-1]["kind"] == "StatefulSet"
    assert "p/c-1.yaml" in conv.files
