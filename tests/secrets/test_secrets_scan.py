"""The plaintext-secret scan: what it must catch, what it must leave alone, and the
repository itself (everything committed under k8s/, hosts/, modules/, secrets/)."""

from __future__ import annotations

import pytest
from hydradeploy.secrets.scan import looks_secret, scan_repo, scan_text

REAL_REPO_FALSE_POSITIVE_HINT = (
    "a committed file looks like it holds a plaintext secret; if it is a documented "
    "example, mark the line with `hydra-secrets: allow`"
)


@pytest.mark.parametrize(
    ("name", "text", "kind"),
    [
        (
            "secret-yaml",
            "apiVersion: v1\nkind: Secret\nmetadata: {name: a}\nstringData: {a: b}\n",
            "secret-manifest",
        ),
        (
            "secret-data",
            "kind: Secret\napiVersion: v1\nmetadata:\n  name: a\ndata:\n  a: YWJj\n",
            "secret-manifest",
        ),
        (
            "env-entry",
            "env:\n  - name: DB_PASSWORD\n    value: Tr0ub4dor-and-3-more\n",
            "secret-value",
        ),
        (
            "nix-token",
            'services.k3s.token = "0f3e9a7c1d2b4e6f8a0c2e4f6a8b0d2e";\n',
            "secret-value",
        ),
        (
            "compose-list",
            "environment:\n  - API_KEY=sk-A1b2C3d4E5f6G7h8\n",
            "secret-value",
        ),
        ("toml", 'api_token = "ghp_A1b2C3d4E5f6G7h8I9j0"\n', "secret-value"),
        ("json", '{"clientSecret": "Zm9vYmFyYmF6cXV4MTIzNDU2"}', "secret-value"),
        (
            "openssh",
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----\n",
            "private-key",
        ),
        ("pem", "key: |\n  -----BEGIN RSA PRIVATE KEY-----\n", "private-key"),
        (  # age v1.1.1 x25519.go: bech32 with HRP "AGE-SECRET-KEY-", upper case
            "age-key",
            "AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQS\n",
            "private-key",
        ),
        (
            "url",
            "DATABASE_URL: postgresql://ai:hunter2@postgres:5432/db\n",
            "url-credentials",
        ),
        ("k3s-token", "token: K10" + "a" * 64 + "::server:f00dfeed\n", "k3s-token"),
        # k3s pkg/clientaccess/token.go: the creds may be a bootstrap token id.secret
        (
            "k3s-bootstrap-token",
            "join: K10" + "b" * 64 + "::abcdef.0123456789abcdef\n",
            "k3s-token",
        ),
        (
            "nix-secret",
            '{ kind = "Secret";\n  metadata.name = "x";\n  stringData.a = "b"; }\n',
            "secret-manifest",
        ),
    ],
)
def test_scan_catches(name: str, text: str, kind: str) -> None:
    suffix = ".json" if name == "json" else ".yaml"
    kinds = {f.kind for f in scan_text(text, f"k8s/{name}{suffix}")}
    assert kind in kinds, (name, kinds)


@pytest.mark.parametrize(
    "text",
    [
        "env:\n  - name: DB_PASSWORD\n    valueFrom:\n      secretKeyRef: {name: db, key: password}\n",
        "tokenFile = config.age.secrets.k3s-token.path;\n",
        "security.sudo.wheelNeedsPassword = !cfg.passwordlessSudo2;\n",
        'admin_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGxRk4eJ9QmW3vTc0aBcDeFgHiJkLmNoPqRsTuVwXyZ0 me@x"]\n',
        'host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGxRk4eJ9QmW3vTc0aBcDeFgHiJkLmNoPqRsTuVwXyZ0"\n',
        "secretName: my-db-credentials\n",
        "PASSWORD_FILE=/run/secrets/db_password\n",
        "ENABLE_API_KEY=true\n",
        "taints:\n  - key: nvidia.com/gpu\n    effect: NoSchedule\n",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: empty}\n",  # no data: nothing leaks
        'token = "${K3S_TOKEN}"\n',
        "DATABASE_URL: postgresql://ai:${POSTGRES_PASSWORD}@postgres:5432/ai\n",
        "url: https://github.com/ryantm/agenix\n",
        "kind: Secret  # hydra-secrets: allow\nstringData: {a: b}\n".replace(
            "kind: Secret  #", "#"
        ),
        'api_key = "0f3e9a7c1d2b4e6f8a0c2e4f6a8b0d2e"  # hydra-secrets: allow (documented example)\n',
    ],
)
def test_scan_leaves_references_and_public_data_alone(text: str) -> None:
    assert scan_text(text, "hosts/x.yaml") == []


def test_known_values_are_found_anywhere_and_never_printed() -> None:
    text = "a: 1\nnote: the password is CorrectHorse\n"
    (finding,) = scan_text(text, "k8s/x.yaml", known=["CorrectHorse"])
    assert finding.kind == "known-secret" and finding.line == 2
    assert "CorrectHorse" not in str(finding)


def test_entropy_threshold() -> None:
    assert looks_secret("0f3e9a7c1d2b4e6f8a0c2e4f6a8b0d2e")
    assert looks_secret("Tr0ub4dor-and-3-more")
    assert not looks_secret("changeme")  # too short to judge by entropy
    # a random token the property test found under the old 3.0 bar (2.8 bits/char)
    assert looks_secret("aa9ee7a5a11a0977009Z")
    assert not looks_secret("zzzzzzzz11111111")  # letters and digits, 1 bit/char
    assert not looks_secret("config.age.secrets.k3s-token.path")
    assert not looks_secret("/run/agenix/k3s-token")


def test_the_repository_holds_no_plaintext_secret(repo_root_path: object) -> None:
    from pathlib import Path

    root = Path(str(repo_root_path))
    findings = scan_repo(root)
    assert findings == [], (
        REAL_REPO_FALSE_POSITIVE_HINT + ":\n" + "\n".join(map(str, findings))
    )


@pytest.fixture
def repo_root_path() -> object:
    from pathlib import Path

    return Path(__file__).resolve().parents[2]
