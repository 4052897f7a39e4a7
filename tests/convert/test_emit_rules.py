"""The mapping rules of docs/converter.md, one test per rule, on small inputs."""

from __future__ import annotations

from typing import Any

import pytest
from convert_helpers import messages, podman, services, validate_strict, workload
from hydradeploy.convert.emit import EmitOptions, convert
from hydradeploy.convert.names import assign_names, sanitize
from hydradeploy.convert.oci_containers import load_podman


def _pod(conv: Any, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = workload(conv, name)["spec"]["template"]["spec"]
    return spec


def _validate_all(conv: Any) -> None:
    for docs in conv.files.values():
        for doc in docs:
            validate_strict(doc)
    for doc in conv.secrets.values():
        validate_strict(doc)


def test_nvidia_cdi_all_takes_the_hosts_count_runtime_class_and_recreate() -> None:
    conv = podman(
        {"llm": {"image": "ollama/ollama:0.5.7", "devices": ["nvidia.com/gpu=all"]}},
        gpus={"nvidia": 2},
    )
    w = workload(conv, "llm")
    pod = _pod(conv, "llm")
    assert pod["runtimeClassName"] == "nvidia"
    assert pod["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": 2}
    assert w["spec"]["strategy"] == {"type": "Recreate"}
    assert "volumes" not in pod  # the device plugin hands out the device, no hostPath
    _validate_all(conv)


def test_gpu_all_without_inventory_count_asks_for_one_and_warns() -> None:
    conv = podman({"llm": {"image": "x", "extraOptions": ["--gpus", "all"]}}, gpus={})
    assert _pod(conv, "llm")["containers"][0]["resources"]["limits"] == {
        "nvidia.com/gpu": 1
    }
    assert any("asking for 1" in m for m in messages(conv, "llm", "warning"))


def test_gpus_flag_counts_devices() -> None:
    # docker's form with the docker backend (`podman = null`), podman's with podman
    conv = podman(
        {
            "llm": {
                "image": "x",
                "podman": None,
                "extraOptions": ['--gpus="device=0,1"'],
            },
            "pm": {"image": "x", "extraOptions": ["--gpus=0,1"]},
        }
    )
    for name in ("llm", "pm"):
        assert _pod(conv, name)["containers"][0]["resources"]["limits"] == {
            "nvidia.com/gpu": 2
        }


def test_amd_kfd_and_dri_become_amd_gpu_without_runtime_class() -> None:
    conv = podman(
        {
            "rocm": {
                "image": "ollama/ollama:rocm",
                "devices": ["/dev/kfd", "/dev/dri:/dev/dri"],
            }
        },
        host="hydra-amd",
        gpus={"amd": 1},
    )
    pod = _pod(conv, "rocm")
    assert pod["containers"][0]["resources"]["limits"] == {"amd.com/gpu": 1}
    assert "runtimeClassName" not in pod
    assert "volumes" not in pod  # /dev/dri went with the GPU request
    _validate_all(conv)


def test_dri_alone_with_a_media_image_stays_a_device_pinned_and_warned() -> None:
    conv = podman(
        {"plex": {"image": "plexinc/pms-docker", "devices": ["/dev/dri:/dev/dri"]}}
    )
    pod = _pod(conv, "plex")
    assert pod["volumes"] == [{"name": "dev-dev-dri", "hostPath": {"path": "/dev/dri"}}]
    assert pod["nodeSelector"] == {"kubernetes.io/hostname": "hydra-ai"}
    assert any("device plugin" in m for m in messages(conv, "plex", "warning"))


def test_bind_mounts_pin_the_pod_read_only_is_kept_and_nix_store_flagged() -> None:
    conv = podman(
        {
            "app": {
                "image": "x",
                "volumes": [
                    "/srv/app:/data",
                    "/mnt/media:/media:ro",
                    "/nix/store/abc-conf:/etc/app:ro",
                ],
            }
        }
    )
    pod = _pod(conv, "app")
    assert pod["nodeSelector"] == {"kubernetes.io/hostname": "hydra-ai"}
    mounts = pod["containers"][0]["volumeMounts"]
    assert [m.get("readOnly", False) for m in mounts] == [False, True, True]
    assert [v["hostPath"]["path"] for v in pod["volumes"]] == [
        "/srv/app",
        "/mnt/media",
        "/nix/store/abc-conf",
    ]
    assert workload(conv, "app")["spec"]["strategy"] == {"type": "Recreate"}
    assert any("Nix store" in m for m in messages(conv, "app", "warning"))
    _validate_all(conv)


def test_bind_mount_without_host_is_not_pinned_and_says_so() -> None:
    conv = podman({"app": {"image": "x", "volumes": ["/srv/app:/data"]}}, host=None)
    assert "nodeSelector" not in _pod(conv, "app")
    assert any("NOT pinned" in m for m in messages(conv, "app", "warning"))


def test_ports_clusterip_nodeport_loadbalancer_loopback() -> None:
    conv = podman(
        {
            "web": {
                "image": "x",
                "ports": [
                    "8080:80",
                    "30080:8081",
                    "127.0.0.1:9000:9000",
                    "53:53/udp",
                    "9100",
                ],
            }
        }
    )
    svc = services(conv, "web")
    assert svc["web"]["spec"]["type"] == "ClusterIP"
    assert {p["port"] for p in svc["web"]["spec"]["ports"]} == {
        80,
        8081,
        9000,
        53,
        9100,
    }
    node = svc["web-nodeport"]["spec"]
    # "9100" has no host port: podman picks one, here the cluster picks a NodePort
    assert node["type"] == "NodePort" and node["ports"] == [
        {"name": "tcp-9100", "port": 9100, "targetPort": 9100, "protocol": "TCP"},
        {
            "name": "tcp-30080",
            "port": 30080,
            "targetPort": 8081,
            "nodePort": 30080,
            "protocol": "TCP",
        },
    ]
    lb = svc["web-lb"]["spec"]
    assert lb["type"] == "LoadBalancer"
    assert {(p["port"], p["targetPort"], p["protocol"]) for p in lb["ports"]} == {
        (8080, 80, "TCP"),
        (53, 53, "UDP"),
    }
    # the loopback port is in no exposed Service
    exposed = {
        p["port"] for s in ("web-nodeport", "web-lb") for p in svc[s]["spec"]["ports"]
    }
    assert 9000 not in exposed
    assert any("loopback" in m for m in messages(conv, "web", "changed"))
    _validate_all(conv)


def test_specific_host_ip_becomes_host_port_and_pins() -> None:
    conv = podman({"dns": {"image": "x", "ports": ["192.0.2.10:53:53/udp"]}})
    pod = _pod(conv, "dns")
    port = pod["containers"][0]["ports"][0]
    assert (port["hostPort"], port["hostIP"], port["protocol"]) == (
        53,
        "192.0.2.10",
        "UDP",
    )
    assert pod["nodeSelector"] == {"kubernetes.io/hostname": "hydra-ai"}
    _validate_all(conv)


def test_host_network() -> None:
    conv = podman(
        {
            "plex": {
                "image": "x",
                "extraOptions": ["--net=host"],
                "ports": ["32400:32400"],
            }
        }
    )
    pod = _pod(conv, "plex")
    assert pod["hostNetwork"] is True and pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert set(services(conv, "plex")) == {
        "plex"
    }  # no LoadBalancer: the node's own port
    _validate_all(conv)


def test_named_volume_makes_a_statefulset_shared_volume_a_claim() -> None:
    conv = podman(
        {
            "db": {
                "image": "postgres",
                "volumes": ["pg:/var/lib/postgresql/data"],
                "ports": ["5432"],
            },
            "a": {"image": "x", "volumes": ["shared:/s"]},
            "b": {"image": "x", "volumes": ["shared:/s:ro"]},
        }
    )
    db = workload(conv, "db")
    assert db["kind"] == "StatefulSet" and db["spec"]["serviceName"] == "db"
    assert (
        db["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"][
            "storage"
        ]
        == "10Gi"
    )
    assert services(conv, "db")["db"]["spec"]["clusterIP"] == "None"
    assert workload(conv, "a")["kind"] == "Deployment"
    claims = conv.files["apps/_volumes.yaml"]
    assert [c["metadata"]["name"] for c in claims] == ["shared"]
    _validate_all(conv)


def test_secret_looking_values_leave_the_manifest() -> None:
    env = {
        "DB_PASSWORD": "hunter2",
        "OPENAI_API_KEY": "sk-1",
        "DATABASE_URL": "postgres://u:pw@db/x",
        "TZ": "UTC",
        "ENABLE_API_KEY": "true",
        "PASSWORD_FILE": "/run/x",
    }
    conv = podman({"app": {"image": "x", "environment": env}})
    text = repr(conv.files)
    for value in ("hunter2", "sk-1", "u:pw@db"):
        assert value not in text
    secret = conv.secrets["apps/app-env.yaml"]
    assert secret["stringData"] == {
        "DATABASE_URL": "postgres://u:pw@db/x",
        "DB_PASSWORD": "hunter2",
        "OPENAI_API_KEY": "sk-1",
    }
    env_items = {e["name"]: e for e in _pod(conv, "app")["containers"][0]["env"]}
    assert env_items["DB_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "app-env",
        "key": "DB_PASSWORD",
    }
    assert (
        env_items["TZ"]["value"] == "UTC"
        and env_items["ENABLE_API_KEY"]["value"] == "true"
    )
    assert env_items["PASSWORD_FILE"]["value"] == "/run/x"
    _validate_all(conv)


def test_environment_files_become_env_from_with_a_predictable_name() -> None:
    conv = podman({"app": {"image": "x", "environmentFiles": ["/run/agenix/app.env"]}})
    assert _pod(conv, "app")["containers"][0]["envFrom"] == [
        {"secretRef": {"name": "app-env-files"}}
    ]
    actions = messages(conv, "app", "action")
    # rendered into secrets/plain/ and encrypted by `secrets import`, never applied as
    # plaintext to the cluster
    assert any(
        "kubectl -n apps create secret generic app-env-files --from-env-file=/run/agenix/app.env --dry-run=client -o yaml > secrets/plain/apps/app-env-files.yaml"
        in m
        and "hydradeploy secrets import" in m
        for m in actions
    )


def test_dollar_parens_are_escaped_for_the_kubelet() -> None:
    conv = podman(
        {"app": {"image": "x", "environment": {"A": "$(echo hi)"}, "cmd": ["$(HOME)"]}}
    )
    c = _pod(conv, "app")["containers"][0]
    assert c["env"][0]["value"] == "$$(echo hi)" and c["args"] == ["$$(HOME)"]


def _kubelet_expand(text: str) -> str:
    """The kubelet's expansion with no variables defined (kubernetes
    third_party/forked/golang/expansion Expand/tryReadVariableName): `$$` → `$`, `$(X)`
    unresolved stays `$(X)`, any other `$c` stays."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "$" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(" and ")" in text[i + 2 :]:
                end = text.index(")", i + 2)
                out.append(text[i : end + 1])  # unresolved: the reference unchanged
                i = end + 1
                continue
            out.append(text[i : i + 2])
            i += 2
            continue
        out.append(text[i])
        i += 1
    return "".join(out)


@pytest.mark.parametrize(
    "literal", ["pa$$word", "echo $$", "$$(x)", "a$(b)c", "$", "x$y", "$$$"]
)
def test_double_dollars_survive_the_kubelet(literal: str) -> None:
    # Container.command/env value: "Double $$ are reduced to a single $"; a password or
    # `echo $$` (the shell's PID) must reach the process as the engines passed it
    from hydradeploy.convert.parts import escape

    assert _kubelet_expand(escape(literal)) == literal


def test_entrypoint_cmd_workdir_user_hostname_pull_login() -> None:
    conv = podman(
        {
            "app": {
                "image": "registry.example/app:1",
                "entrypoint": "/bin/app",
                "cmd": ["--port", "80"],
                "workdir": "/srv",
                "user": "1000:100",
                "hostname": "My_Host",
                "pull": "always",
                "login": {
                    "registry": "https://registry.example",
                    "username": "me",
                    "passwordFile": "/run/pw",
                },
            },
            "named": {"image": "x", "user": "nobody"},
            "pre": {"image": "x", "imageFile": "/nix/store/abc-image.tar.gz"},
        }
    )
    pod = _pod(conv, "app")
    c = pod["containers"][0]
    assert (c["command"], c["args"], c["workingDir"], c["imagePullPolicy"]) == (
        ["/bin/app"],
        ["--port", "80"],
        "/srv",
        "Always",
    )
    assert c["securityContext"] == {"runAsUser": 1000, "runAsGroup": 100}
    assert pod["hostname"] == "my-host"
    assert pod["imagePullSecrets"] == [{"name": "regcred-registry-example"}]
    assert "securityContext" not in _pod(conv, "named")["containers"][0]
    assert any("numeric UID" in m for m in messages(conv, "named", "lost"))
    assert _pod(conv, "pre")["containers"][0]["imagePullPolicy"] == "Never"
    _validate_all(conv)


def test_capabilities_privileged_health_resources() -> None:
    conv = podman(
        {
            "app": {
                "image": "x",
                "capabilities": {"NET_ADMIN": True, "MKNOD": False, "SYS_TIME": None},
                "privileged": True,
                "extraOptions": [
                    "--health-cmd",
                    "curl -f localhost",
                    "--health-interval=10s",
                    "--health-retries=5",
                    "--memory=512m",
                    "--cpus=1.5",
                    "--shm-size=1g",
                ],
            }
        }
    )
    c = _pod(conv, "app")["containers"][0]
    assert c["securityContext"] == {
        "privileged": True,
        "capabilities": {"add": ["NET_ADMIN"], "drop": ["MKNOD"]},
    }
    assert c["readinessProbe"]["exec"]["command"] == [
        "/bin/sh",
        "-c",
        "curl -f localhost",
    ]
    assert (
        c["readinessProbe"]["periodSeconds"],
        c["readinessProbe"]["failureThreshold"],
    ) == (10, 5)
    assert c["resources"]["limits"] == {"cpu": "1500m", "memory": "512Mi"}
    assert {"name": "dshm", "mountPath": "/dev/shm"} in c["volumeMounts"]
    _validate_all(conv)


def test_depends_on_waits_for_the_dependencys_service() -> None:
    conv = podman(
        {
            "web": {"image": "x", "dependsOn": ["db"]},
            "db": {"image": "pg", "ports": ["5432"]},
        }
    )
    w = workload(conv, "web")
    init = w["spec"]["template"]["spec"]["initContainers"][0]
    assert (
        init["name"] == "wait-for-db"
        and "db.apps.svc.cluster.local 5432" in init["command"][2]
    )
    assert w["metadata"]["annotations"]["hydra.io/depends-on"] == "db"


def test_auto_start_false_scales_to_zero() -> None:
    conv = podman({"job": {"image": "x", "autoStart": False}})
    assert workload(conv, "job")["spec"]["replicas"] == 0


def test_every_object_is_labelled_and_annotated_with_its_source() -> None:
    conv = podman(
        {
            "web": {"image": "x", "ports": ["8080:80"], "volumes": ["v:/v"]},
            "w2": {"image": "x", "volumes": ["v:/v"]},
        }
    )
    for doc in conv.files["apps/_namespace.yaml"] + conv.files["apps/_volumes.yaml"]:
        assert (
            doc["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "hydradeploy"
        )
        assert doc["metadata"]["labels"]["app.kubernetes.io/name"]
    # the Namespace is shared by every source converting into it: no source annotation
    assert "annotations" not in conv.files["apps/_namespace.yaml"][0]["metadata"]
    for doc in conv.files["apps/_volumes.yaml"]:
        assert doc["metadata"]["annotations"]["hydra.io/source"].startswith("test.json")
    for doc in conv.files["apps/web.yaml"]:
        meta = doc["metadata"]
        assert meta["labels"]["app.kubernetes.io/name"] == "web"
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "hydradeploy"
        assert meta["annotations"]["hydra.io/source"] == "test.json#web"
        assert meta["annotations"]["hydra.io/source-host"] == "hydra-ai"


def test_names_are_sanitised_and_collisions_resolved_deterministically() -> None:
    mapping, renamed = assign_names(["web", "Web", "WEB", "my_app", "9lives", "x" * 80])
    assert ("my_app", "my-app") in renamed and ("web", "web") not in renamed
    assert mapping["web"] == "web"
    assert {mapping["Web"], mapping["WEB"]} == {"web-2", "web-3"}
    assert mapping["WEB"] == "web-2"  # sorted order: "WEB" < "Web"
    assert mapping["my_app"] == "my-app" and mapping["9lives"] == "c-9lives"
    assert len(mapping["x" * 80]) <= 47
    assert sanitize("---") == "container"
    conv = podman({"Web": {"image": "x"}, "web": {"image": "y"}})
    assert sorted(conv.files) == [
        "apps/_namespace.yaml",
        "apps/web-2.yaml",
        "apps/web.yaml",
    ]
    assert any("'Web' → 'web-2'" in n.message for n in conv.notes)


@pytest.mark.parametrize("ns", ["default", "kube-system"])
def test_no_namespace_object_for_system_namespaces(ns: str) -> None:
    conv = convert(
        load_podman({"a": {"image": "x"}}, "t.json", None), EmitOptions(namespace=ns)
    )
    assert f"{ns}/_namespace.yaml" not in conv.files


def test_nvidia_visible_devices_is_left_to_the_device_plugin() -> None:
    conv = podman(
        {
            "llm": {
                "image": "x",
                "devices": ["nvidia.com/gpu=0"],
                "environment": {
                    "NVIDIA_VISIBLE_DEVICES": "all",
                    "NVIDIA_DRIVER_CAPABILITIES": "compute,video",
                },
            }
        }
    )
    env = {e["name"] for e in _pod(conv, "llm")["containers"][0]["env"]}
    assert env == {"NVIDIA_DRIVER_CAPABILITIES"}
    assert any("NVIDIA_VISIBLE_DEVICES" in m for m in messages(conv, "llm", "changed"))


def test_group_add_numeric_becomes_supplemental_groups_names_are_reported() -> None:
    conv = podman(
        {
            "a": {
                "image": "x",
                "extraOptions": [
                    "--group-add=44",
                    "--group-add",
                    "video",
                    "--sysctl=net.core.somaxconn=1024",
                ],
            }
        }
    )
    sc = _pod(conv, "a")["securityContext"]
    assert sc == {
        "supplementalGroups": [44],
        "sysctls": [{"name": "net.core.somaxconn", "value": "1024"}],
    }
    assert any("'video'" in m for m in messages(conv, "a", "lost"))
    assert any("unsafe sysctls" in m for m in messages(conv, "a", "warning"))
    _validate_all(conv)


def test_secret_on_the_command_line_is_warned_about() -> None:
    conv = podman({"a": {"image": "x", "cmd": ["--api-key=sk-123", "--port=80"]}})
    warnings = messages(conv, "a", "warning")
    assert any("--api-key=…" in m for m in warnings) and not any(
        "--port" in m for m in warnings
    )


def test_port_clashes_and_k3s_own_ports_are_warned() -> None:
    conv = podman(
        {
            "a": {"image": "x", "ports": ["30080:80", "6443:443"]},
            "b": {"image": "x", "ports": ["30080:81/udp"]},
        }
    )
    assert any(
        "2 containers publish 30080 as NodePort" in n.message for n in conv.notes
    )
    assert any("k3s's own (API server)" in m for m in messages(conv, "a", "warning"))
