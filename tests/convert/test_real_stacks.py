"""Issue 14: small stacks of our own shaped like real ones (immich, n8n, gluetun +
qbittorrent, sentry's .env), one test per point; every document strict-schema-valid."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from convert_helpers import podman, services, validate_strict
from hydradeploy.convert.compose import load_compose
from hydradeploy.convert.emit import Conversion, EmitOptions, convert


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
