"""Issue 14: small stacks of our own shaped like real ones (immich, n8n, gluetun +
qbittorrent, sentry's .env), one test per point; every document strict-schema-valid."""

from __future__ import annotations

import copy
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from convert_helpers import podman, run_cli, services, validate_strict
from hydradeploy.convert.compose import load_compose
from hydradeploy.convert.emit import Conversion, EmitOptions, convert

REPO = Path(__file__).resolve().parents[2]


def _compose(
    tmp_path: Path,
    text: str,
    env: dict[str, str] | None = None,
    dotenv: str | None = None,
    **kw: Any,
) -> Conversion:
    path = tmp_path / "docker-compose.yml"
    path.write_text(textwrap.dedent(text))
    if dotenv is not None:
        (tmp_path / ".env").write_text(textwrap.dedent(dotenv))
    source = load_compose([path], environ=env or {}, host="hydra-ai", **kw)
    conv = convert(source, EmitOptions(namespace="apps", host="hydra-ai"))
    for docs in conv.files.values():
        for doc in docs:
            validate_strict(doc)
    return conv


def _all_services(conv: Conversion) -> dict[str, dict[str, Any]]:
    return {
        d["metadata"]["name"]: d
        for docs in conv.files.values()
        for d in docs
        if d["kind"] == "Service"
    }


def _kinds(conv: Conversion, name: str) -> list[str]:
    return [d["kind"] for d in conv.files[f"apps/{name}.yaml"]]


IMMICH_LIKE = """
    name: photos
    services:
      server:
        image: ghcr.io/example/photos-server:v1
        container_name: photos_server
        ports: ["2283:2283"]
        depends_on: [redis, database]
      machine-learning:
        image: ghcr.io/example/photos-ml:v1
        volumes: [model-cache:/cache]
      redis:
        image: docker.io/valkey/valkey:8
        healthcheck:
          test: redis-cli ping || exit 1
      database:
        image: docker.io/example/postgres:14
        container_name: photos_postgres
        hostname: pgdb
        networks:
          default:
            aliases: [db, Postgres]
    volumes:
      model-cache:
"""


def test_point1_every_service_resolves_by_its_name_and_aliases(tmp_path: Path) -> None:
    conv = _compose(tmp_path, IMMICH_LIKE)
    svcs = _all_services(conv)
    # no ports anywhere: headless, so `redis:6379` reaches the pod directly
    assert svcs["redis"]["spec"]["clusterIP"] == "None"
    assert "ports" not in svcs["redis"]["spec"]
    assert svcs["database"]["spec"]["clusterIP"] == "None"
    # a published port: a normal ClusterIP Service on the container port, plus the lb
    assert svcs["server"]["spec"]["type"] == "ClusterIP"
    assert svcs["server"]["spec"]["ports"][0]["port"] == 2283
    # the StatefulSet's own headless Service keeps its name
    assert svcs["machine-learning"]["spec"]["clusterIP"] == "None"
    # container_name, hostname, network aliases: one Service each, same selector
    for alias in ("photos-server",):
        assert svcs[alias]["spec"]["selector"] == {"app.kubernetes.io/name": "server"}
    for alias in ("photos-postgres", "pgdb", "db", "postgres"):
        assert svcs[alias]["spec"]["selector"] == {"app.kubernetes.io/name": "database"}
    # `photos_postgres` is no DNS-1035 label: the report says which name replaces it
    renamed = [
        n.message for n in conv.notes if n.key == "aliases" and n.kind == "changed"
    ]
    assert any("'photos_postgres'" in m and "'photos-postgres'" in m for m in renamed)
    assert not any("'Postgres'" in m for m in renamed)  # only case: DNS ignores it


def test_point1_links_alias_belongs_to_the_linked_service(tmp_path: Path) -> None:
    conv = _compose(tmp_path, """
        services:
          web:
            image: example/web:1
            links: ["cache:memcached", "db"]
          cache:
            image: memcached:1.6
          db:
            image: postgres:16
    """)  # fmt: skip
    svcs = _all_services(conv)
    assert svcs["memcached"]["spec"]["selector"] == {"app.kubernetes.io/name": "cache"}
    web = next(d for d in conv.files["apps/web.yaml"] if d["kind"] == "Deployment")
    assert web["metadata"]["annotations"]["hydra.io/depends-on"] == "cache,db"


def test_point1_aliases_nobody_could_look_up_make_no_service(tmp_path: Path) -> None:
    conv = _compose(tmp_path, """
        services:
          a:
            image: x
            hostname: "..."
            networks: {default: {aliases: ["-"]}}
    """)  # fmt: skip
    assert sorted(_all_services(conv)) == ["a"]


def test_point1_alias_clash_is_reported_not_overwritten(tmp_path: Path) -> None:
    conv = _compose(tmp_path, """
        services:
          a: {image: x, container_name: b}
          b: {image: y}
    """)  # fmt: skip
    assert _all_services(conv)["b"]["spec"]["selector"] == {
        "app.kubernetes.io/name": "b"
    }
    assert any("already the name of another Service" in n.message for n in conv.notes)


def test_point1_podman_network_alias_and_portless_container(tmp_path: Path) -> None:
    conv = podman(
        {
            "gotenberg": {
                "image": "gotenberg/gotenberg:8",
                "extraOptions": ["--network-alias=pdf"],
            },
            "tika": {"image": "apache/tika:3", "hostname": "tika-server"},
        }
    )
    g = services(conv, "gotenberg")
    assert g["gotenberg"]["spec"]["clusterIP"] == "None"
    assert g["pdf"]["spec"]["selector"] == {"app.kubernetes.io/name": "gotenberg"}
    assert "tika-server" in services(conv, "tika")


JITSI_LIKE = """
    services:
      web:
        image: jitsi/web:stable
        volumes:
          - ${CONFIG}/web:/config:Z
          - type: bind
            source: ~/.cache/huggingface
            target: /root/.cache/huggingface
        env_file: ~/jitsi.env
"""


def test_point2_tilde_expands_to_home_and_is_reported(tmp_path: Path) -> None:
    conv = _compose(
        tmp_path, JITSI_LIKE, dotenv="CONFIG=~/.jitsi-meet-cfg\n", home="/home/alice"
    )
    pod = next(d for d in conv.files["apps/web.yaml"] if d["kind"] == "Deployment")
    paths = sorted(
        v["hostPath"]["path"] for v in pod["spec"]["template"]["spec"]["volumes"]
    )
    assert paths == [
        "/home/alice/.cache/huggingface",
        "/home/alice/.jitsi-meet-cfg/web",
    ]
    changed = [
        n.message for r in conv.containers for n in r.notes if n.kind == "changed"
    ]
    assert any(
        "~/.jitsi-meet-cfg/web → /home/alice/.jitsi-meet-cfg/web" in m for m in changed
    )
    assert any("/home/alice/jitsi.env" in n.message for n in conv.containers[0].notes)


def test_point2_tilde_defaults_to_the_invoking_users_home(tmp_path: Path) -> None:
    conv = _compose(tmp_path, JITSI_LIKE, env={"CONFIG": "~/cfg", "HOME": "/home/bob"})
    pod = next(d for d in conv.files["apps/web.yaml"] if d["kind"] == "Deployment")
    paths = sorted(
        v["hostPath"]["path"] for v in pod["spec"]["template"]["spec"]["volumes"]
    )
    assert paths == ["/home/bob/.cache/huggingface", "/home/bob/cfg/web"]


def test_point2_depends_on_a_unit_outside_the_set_is_reported_not_refused() -> None:
    conv = podman(
        {
            "app": {"image": "example/app:1", "dependsOn": ["create-network", "db"]},
            "db": {"image": "postgres:16", "ports": ["5432"]},
        }
    )
    lost = [
        n.message
        for r in conv.containers
        if r.name == "app"
        for n in r.notes
        if n.kind == "lost"
    ]
    assert any("create-network" in m and "not among the converted" in m for m in lost)
    app = next(d for d in conv.files["apps/app.yaml"] if d["kind"] == "Deployment")
    assert app["metadata"]["annotations"]["hydra.io/depends-on"] == "db"


N8N_LIKE = """
    services:
      postgres:
        image: postgres:16-alpine
        environment:
          - POSTGRES_USER
          - POSTGRES_PASSWORD
          - POSTGRES_DB
          - POSTGRES_UNSET
"""


def test_point3_bare_variables_take_values_from_dotenv_and_shell(
    tmp_path: Path,
) -> None:
    conv = _compose(
        tmp_path,
        N8N_LIKE,
        env={"POSTGRES_DB": "from-shell"},
        dotenv="POSTGRES_USER=n8n\nPOSTGRES_PASSWORD=hunter2\nPOSTGRES_DB=from-dotenv\n",
    )
    pod = next(d for d in conv.files["apps/postgres.yaml"] if d["kind"] == "Deployment")
    env = {
        e["name"]: e for e in pod["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["POSTGRES_USER"]["value"] == "n8n"
    assert env["POSTGRES_DB"]["value"] == "from-shell"  # the shell wins over .env
    assert "secretKeyRef" in env["POSTGRES_PASSWORD"]["valueFrom"]  # and never literal
    (secret,) = conv.secrets.values()
    assert secret["stringData"]["POSTGRES_PASSWORD"] == "hunter2"
    assert "POSTGRES_UNSET" not in env
    lost = [n.message for n in conv.containers[0].notes if n.kind == "lost"]
    assert any(m.startswith("POSTGRES_UNSET: no value") for m in lost)


SENTRY_LIKE = """
    services:
      web: {image: example/sentry:24}
      snuba-api: {image: example/snuba:24}
      profiling: {image: example/vroom:24, profiles: [feature-complete]}
      taskworker: {image: example/sentry:24, profiles: [feature-complete, tasks]}
      debug: {image: example/debug:1, profiles: [debug]}
"""


def test_point3_compose_profiles_and_project_name_from_dotenv(tmp_path: Path) -> None:
    dotenv = (
        "COMPOSE_PROJECT_NAME=sentry-self-hosted\nCOMPOSE_PROFILES=feature-complete\n"
    )
    path = tmp_path / "docker-compose.yml"
    path.write_text(textwrap.dedent(SENTRY_LIKE))
    (tmp_path / ".env").write_text(dotenv)
    source = load_compose([path], environ={})
    assert source.project == "sentry-self-hosted"
    assert sorted(c.source_name for c in source.containers) == [
        "profiling", "snuba-api", "taskworker", "web",
    ]  # fmt: skip
    # --profile replaces COMPOSE_PROFILES; "*" enables every profile
    only = load_compose([path], environ={}, profiles={"debug"})
    assert sorted(c.source_name for c in only.containers) == [
        "debug",
        "snuba-api",
        "web",
    ]
    every = load_compose([path], environ={"COMPOSE_PROFILES": "*"})
    assert len(every.containers) == 5
    # the shell's COMPOSE_PROJECT_NAME wins over .env
    assert load_compose([path], environ={"COMPOSE_PROJECT_NAME": "s2"}).project == "s2"


N8N_TASKS = """
    services:
      n8n-import:
        image: n8nio/n8n:1
        command: import:workflow --input=/backup
        volumes: [n8n-data:/home/node/.n8n]
      n8n:
        image: n8nio/n8n:1
        restart: unless-stopped
        ports: ["5678:5678"]
        depends_on:
          n8n-import: {condition: service_completed_successfully}
      ollama-pull:
        image: ollama/ollama:0.5
        restart: on-failure:3
        command: pull llama3.2
      cleanup:
        image: busybox:1.37
        restart: "no"
    volumes:
      n8n-data:
"""


def test_point4_one_shot_services_become_jobs(tmp_path: Path) -> None:
    conv = _compose(tmp_path, N8N_TASKS)
    pull = next(d for d in conv.files["apps/ollama-pull.yaml"] if d["kind"] == "Job")
    assert pull["spec"]["backoffLimit"] == 3
    assert pull["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"
    cleanup = next(d for d in conv.files["apps/cleanup.yaml"] if d["kind"] == "Job")
    assert cleanup["spec"]["backoffLimit"] == 0
    assert cleanup["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    # no restart key, but n8n waits for it to complete: one-shot, with its own claim
    assert _kinds(conv, "n8n-import") == ["PersistentVolumeClaim", "Service", "Job"]
    assert _kinds(conv, "n8n")[-1] == "Deployment"


GLUETUN = """
    services:
      gluetun:
        image: qmcgaw/gluetun:v3
        cap_add: [NET_ADMIN]
        devices: [/dev/net/tun:/dev/net/tun]
        ports: ["8080:8080", "6881:6881/udp"]
      qbittorrent:
        image: lscr.io/linuxserver/qbittorrent:5
        network_mode: service:gluetun
        depends_on: [gluetun]
        volumes: [/srv/downloads:/downloads]
      exporter:
        image: example/qbit-exporter:1
        network_mode: container:qbit
        depends_on: [qbittorrent]
      qbit-proxy:
        image: example/proxy:1
        container_name: qbit
        network_mode: service:gluetun
"""


def test_point4_shared_network_namespace_is_one_pod(tmp_path: Path) -> None:
    conv = _compose(tmp_path, GLUETUN)
    assert sorted(conv.files) == ["apps/_namespace.yaml", "apps/gluetun.yaml"]
    docs = conv.files["apps/gluetun.yaml"]
    pod = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == [
        "gluetun", "exporter", "qbit-proxy", "qbittorrent",
    ]  # fmt: skip
    assert "initContainers" not in pod  # nobody waits for a port its own pod serves
    assert pod["nodeSelector"] == {
        "kubernetes.io/hostname": "hydra-ai"
    }  # qbittorrent's bind
    svcs = _all_services(conv)
    for name in ("gluetun", "qbittorrent", "exporter", "qbit-proxy", "qbit"):
        assert svcs[name]["spec"]["selector"] == {"app.kubernetes.io/name": "gluetun"}
    by = {r.source_name: r for r in conv.containers}
    assert by["qbittorrent"].workload == "in pod of gluetun"


def test_point4_notes_device_ids_bare_port_env_file_links_startup(
    tmp_path: Path,
) -> None:
    conv = _compose(tmp_path, """
        services:
          redis:
            image: redis:7
            ports: ["6379"]
            env_file: [./redis.env, {path: ./optional.env, required: false}]
            healthcheck:
              test: [CMD, redis-cli, ping]
              interval: 10s
              retries: 3
              start_period: 40s
          llm:
            image: vllm/vllm-openai:v0.6
            deploy:
              resources:
                reservations:
                  devices: [{driver: nvidia, device_ids: ["0", "1"], capabilities: [gpu]}]
    """)  # fmt: skip
    notes = {r.source_name: [n.message for n in r.notes] for r in conv.containers}
    assert any("device_ids ['0', '1']" in m for m in notes["llm"])
    assert any("'6379' has no host port" in m for m in notes["redis"])
    assert _all_services(conv)["redis-nodeport"]["spec"]["type"] == "NodePort"
    assert any(m.startswith("./redis.env not found") for m in notes["redis"])
    assert not any("optional.env" in m for m in notes["redis"])
    pod = next(d for d in conv.files["apps/redis.yaml"] if d["kind"] == "Deployment")
    spec = pod["spec"]["template"]["spec"]
    assert spec["enableServiceLinks"] is False
    probe = spec["containers"][0]["startupProbe"]
    # moby daemon/health.go: every 5 s (defaultStartInterval) during the 40 s start
    # period, then 3 failures 10 s apart: the same 70 s in 5 s tries
    assert (probe["periodSeconds"], probe["failureThreshold"]) == (5, 8 + 6)
    assert "initialDelaySeconds" not in spec["containers"][0]["readinessProbe"]


def test_point4_podman_network_container_is_one_pod() -> None:
    conv = podman(
        {
            "vpn": {"image": "qmcgaw/gluetun:v3", "ports": ["8080:8080"]},
            "torrent": {
                "image": "lscr.io/linuxserver/qbittorrent:5",
                "dependsOn": ["vpn"],
                "extraOptions": ["--network=container:vpn"],
            },
        }
    )
    pod = next(d for d in conv.files["apps/vpn.yaml"] if d["kind"] == "Deployment")
    spec = pod["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["containers"]] == ["vpn", "torrent"]
    assert "initContainers" not in spec
    assert "apps/torrent.yaml" not in conv.files


def test_issue17_load_balancer_is_a_typed_result_not_a_name_suffix() -> None:
    # the CLI's old test `o.endswith("-lb")` took this ClusterIP Service for a LoadBalancer
    conv = podman(
        {
            "cache-lb": {"image": "haproxy:3", "ports": ["127.0.0.1:8404:8404"]},
            "web": {"image": "nginx:1", "ports": ["8081:80"]},
        }
    )
    by = {r.name: r.load_balancer for r in conv.containers}
    assert by == {"cache-lb": False, "web": True}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "services:\n  web:\n    image: nginx:1\n    portz: ['80:80']\n",
            "compose.yml: service 'web': unknown key 'portz' (did you mean 'ports'?)",
        ),
        (
            "services:\n  web:\n    image: nginx:1\n    healthcheck: {test: [CMD, 'true'], intervall: 5s}\n",
            "service 'web': healthcheck: unknown key 'intervall' (did you mean 'interval'?)",
        ),
        (
            "web:\n  image: nginx:1\n",
            "compose.yml: top-level key 'web' looks like a service of a version 1 file",
        ),
        (
            "servics:\n  web: {image: nginx:1}\n",
            "compose.yml: unknown key 'servics' (did you mean 'services'?)",
        ),
        (
            "services:\n  web:\n    image: nginx:1\n    image: nginx:2\n",
            "compose.yml: line 4 column 5: malformed YAML: duplicate key 'image'",
        ),
    ],
)
def test_point8_unknown_and_duplicate_keys_are_one_line_errors(
    tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / "compose.yml").write_text(text)
    out = tmp_path / "out"
    result = run_cli(
        "convert", "compose-to-k8s", str(tmp_path / "compose.yml"),
        "--out", str(out), "--secrets-dir", str(tmp_path / "s"),
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_point8_merge_keys_and_extensions_stay_valid(tmp_path: Path) -> None:
    conv = _compose(tmp_path, """
        x-common: &common {image: example/app:1, restart: unless-stopped}
        services:
          a:
            <<: *common
            image: example/app:2
            x-note: kept
    """)  # fmt: skip
    pod = next(d for d in conv.files["apps/a.yaml"] if d["kind"] == "Deployment")
    assert pod["spec"]["template"]["spec"]["containers"][0]["image"] == "example/app:2"


def test_point6_two_sources_share_a_namespace_without_destroying_each_other(
    tmp_path: Path,
) -> None:
    import json

    out, secrets = tmp_path / "out", tmp_path / "s"
    compose = tmp_path / "stack" / "docker-compose.yml"
    compose.parent.mkdir()
    compose.write_text(
        "services:\n  redis: {image: 'redis:7'}\n  web: {image: 'nginx:1'}\n"
    )
    host = tmp_path / "host.json"
    host.write_text(json.dumps({"jellyfin": {"image": "jellyfin/jellyfin:10"}}))
    common = (
        "--namespace",
        "media",
        "--out",
        str(out),
        "--secrets-dir",
        str(secrets),
        "-q",
    )
    c1 = ("convert", "compose-to-k8s", str(compose), *common)
    c2 = ("convert", "podman-to-k8s", "--json", str(host), *common)
    assert run_cli(*c1).returncode == 0
    assert run_cli(*c2).returncode == 0
    files = sorted(p.name for p in (out / "media").iterdir())
    assert files == ["_namespace.yaml", "jellyfin.yaml", "redis.yaml", "web.yaml"]
    # each checks only its own files: both clean
    assert run_cli(*c1, "--check").returncode == 0
    assert run_cli(*c2, "--check").returncode == 0
    # the compose stack drops web: only its own file goes
    compose.write_text("services:\n  redis: {image: 'redis:7'}\n")
    assert run_cli(*c1).returncode == 0
    files = sorted(p.name for p in (out / "media").iterdir())
    assert files == ["_namespace.yaml", "jellyfin.yaml", "redis.yaml"]
    # a container of the same name in the other source: refused, nothing written
    host.write_text(json.dumps({"redis": {"image": "redis:6"}}))
    before = {p.name: p.read_bytes() for p in (out / "media").iterdir()}
    clash = run_cli(*c2)
    assert clash.returncode == 2
    assert "media/redis.yaml belongs to the conversion of" in clash.stderr
    assert {p.name: p.read_bytes() for p in (out / "media").iterdir()} == before


def test_point7_cluster_fit_problems_are_reported_at_conversion(tmp_path: Path) -> None:
    """The converter runs k8s-check's cluster-fit checks with the repository's k8s/ tree
    as context: a LoadBalancer port k8s/apps already publishes (ComfyUI's 8188), an
    amd.com/gpu on an NVIDIA-only host, a ConfigMap nobody creates."""
    import shutil

    repo = tmp_path / "repo"
    shutil.copytree(REPO / "k8s" / "apps", repo / "k8s" / "apps")
    shutil.copytree(REPO / "k8s" / "platform", repo / "k8s" / "platform")
    (repo / "hosts").mkdir()
    shutil.copy(REPO / "hosts" / "inventory.toml", repo / "hosts" / "inventory.toml")
    stack = repo / "stack"
    stack.mkdir()
    (stack / "docker-compose.yml").write_text(textwrap.dedent("""
        services:
          comfy:
            image: example/comfyui:1
            ports: ["8188:8188"]
          rocm:
            image: ollama/ollama:rocm
            devices: [/dev/kfd]
          prom:
            image: prom/prometheus:v3
            configs: [missing]
          llm-a:
            image: example/llm:1
            gpus: all
          llm-b:
            image: example/llm:1
            gpus: all
        configs:
          missing: {file: ./not-here.yml}
    """))  # fmt: skip
    result = run_cli(
        "convert", "compose-to-k8s", str(stack / "docker-compose.yml"), "--host", "hydra-ai",
        cwd=repo, env={"HYDRA_ROOT": str(repo)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    err = " ".join(result.stderr.split())
    assert (
        "[k3s-components] stack/comfy.yaml" in err
        and "port 8188/TCP is already published by Service ai-generation/comfyui" in err
    )
    assert "[gpu-fit] stack/rocm.yaml" in err
    assert "[references] stack/prom.yaml" in err and "ConfigMap 'stack-missing'" in err
    assert "2 containers (llm-a, llm-b) each ask for all nvidia GPUs of hydra-ai" in err


def test_point7_configs_beside_the_compose_file_become_configmaps(
    tmp_path: Path,
) -> None:
    (tmp_path / "prometheus.yml").write_text("global:\n  scrape_interval: 30s\n")
    conv = _compose(tmp_path, """
        name: mon
        services:
          prom:
            image: prom/prometheus:v3
            configs:
              - {source: prom-config, target: /etc/prometheus/prometheus.yml}
              - inline
        configs:
          prom-config: {file: ./prometheus.yml}
          inline: {content: "a: 1"}
    """)  # fmt: skip
    (inline, cm) = sorted(
        conv.files["apps/_configs.yaml"], key=lambda d: d["metadata"]["name"]
    )
    assert inline["metadata"]["name"] == "mon-inline"
    assert cm["metadata"]["name"] == "mon-prom-config"
    assert cm["data"] == {"prom-config": "global:\n  scrape_interval: 30s\n"}


def test_also_volume_size_per_volume(tmp_path: Path) -> None:
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(textwrap.dedent("""
        services:
          db: {image: 'postgres:16', volumes: ['pgdata:/var/lib/postgresql/data']}
          cache: {image: 'redis:7', volumes: ['cache:/data']}
        volumes: {pgdata: {}, cache: {}}
    """))  # fmt: skip
    out = tmp_path / "out"
    args = (
        "convert",
        "compose-to-k8s",
        str(compose),
        "--out",
        str(out),
        "--namespace",
        "vol",
        "-q",
    )
    done = run_cli(*args, "--volume-size", "20Gi", "--volume-size", "pgdata=200Gi")
    assert done.returncode == 0, done.stderr

    def size(name: str) -> str:
        docs = yaml.safe_load_all((out / "vol" / f"{name}.yaml").read_text())
        sts = next(d for d in docs if d["kind"] == "StatefulSet")
        return str(
            sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"][
                "storage"
            ]
        )

    assert (size("db"), size("cache")) == ("200Gi", "20Gi")
    bad = run_cli(*args, "--volume-size", "pgdta=1Gi")
    assert bad.returncode == 2 and "no named volume 'pgdta'" in bad.stderr


def test_also_summary_of_thousands_is_grouped_in_natural_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import io

    import rich.console
    from hydradeploy.convert import report

    conv = podman(
        {
            f"app-{i}": {"image": "x:1", "ports": [f"127.0.0.1:{40000 + i}:80"]}
            for i in range(200)
        }
    )
    buf = io.StringIO()
    real = rich.console.Console
    # print_summary imports Console lazily: hand it one that writes to the buffer
    monkeypatch.setattr(rich.console, "Console", lambda **kw: real(file=buf, width=200))
    report.print_summary(conv, "converted", "apps")
    text = buf.getvalue()
    assert len(text.splitlines()) < 20
    assert "200 container(s) (app-0, app-1, app-2, …)" in text  # app-2 before app-10
    assert "--report FILE" in text


def test_also_summary_never_cuts_a_name_when_piped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not a terminal (a CI log): 120 columns, and a long name folds, never "…"."""
    import io

    import rich.console
    from hydradeploy.convert import report

    long = "prometheus-node-exporter-textfile-collector-for-the-gpu-hosts"
    conv = podman({long: {"image": "quay.io/prometheus/node-exporter:v1.8.2"}})
    buf = io.StringIO()
    real = rich.console.Console
    monkeypatch.setattr(rich.console, "Console", lambda **kw: real(file=buf, **kw))
    report.print_summary(conv, "converted", "apps")
    text = buf.getvalue()
    assert "…" not in text
    assert long in "".join(ln.strip(" │|") for ln in text.splitlines()).replace(" ", "")


def test_also_hostpath_type_file_where_the_source_is_a_known_file(
    tmp_path: Path,
) -> None:
    (tmp_path / "nginx.conf").write_text("events {}\n")
    (tmp_path / "html").mkdir()
    conv = _compose(
        tmp_path,
        """
        services:
          web:
            image: nginx:1
            volumes: ["./nginx.conf:/etc/nginx/nginx.conf:ro", "./html:/usr/share/nginx/html"]
        """,
        project_dir="/srv/web",
    )
    pod = next(d for d in conv.files["apps/web.yaml"] if d["kind"] == "Deployment")
    paths = {
        v["hostPath"]["path"]: v["hostPath"]
        for v in pod["spec"]["template"]["spec"]["volumes"]
    }
    assert paths["/srv/web/nginx.conf"] == {
        "path": "/srv/web/nginx.conf",
        "type": "File",
    }
    assert paths["/srv/web/html"] == {"path": "/srv/web/html"}  # a folder: unknown type


def test_point7_cluster_fit_runs_every_check_services_included(tmp_path: Path) -> None:
    """No check is left out for generated objects: a Service selecting no pod and a named
    targetPort no container has are reported (the services check once compared every
    Service with every pod and was skipped at conversion for its cost)."""
    from hydradeploy.convert import cluster_fit
    from hydradeploy.inventory import load_inventory

    conv = podman({"web": {"image": "nginx:1.27", "ports": ["8080:80"]}})
    generated = dict(conv.files)
    web = generated["apps/web.yaml"]
    stray = copy.deepcopy(next(d for d in web if d["metadata"]["name"] == "web"))
    stray["metadata"]["name"] = "stray"
    stray["spec"]["selector"] = {"app.kubernetes.io/name": "nobody"}
    named = copy.deepcopy(next(d for d in web if d["metadata"]["name"] == "web"))
    named["metadata"]["name"] = "named"
    named["spec"]["ports"][0]["targetPort"] = "http"
    generated["apps/extra.yaml"] = [stray, named]
    inventory = load_inventory(REPO / "hosts" / "inventory.toml")
    lines = cluster_fit.problems(tmp_path, generated, "test.json", inventory, None)
    assert any(
        line.startswith("[services] apps/extra.yaml")
        and "matches no pod template" in line
        for line in lines
    ), lines
    assert any(
        "targetPort 'http' is not a named container port" in line for line in lines
    )
    assert not any("apps/web.yaml" in line and "[services]" in line for line in lines)
