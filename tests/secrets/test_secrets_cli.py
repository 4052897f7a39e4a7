"""The `hydradeploy secrets` commands end to end on real age encryption, with real
ed25519 keys from ssh-keygen standing in for host keys (the lab tests use real hosts)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from secrets_helpers import Repo, age_decrypt, pub

SECRET_YAML = """apiVersion: v1
kind: Secret
metadata:
  name: {name}
  namespace: {ns}
type: Opaque
stringData:
  POSTGRES_PASSWORD: {value}
"""


def plain_secret(repo: Repo, ns: str, name: str, value: str) -> Path:
    path = repo.secrets / "plain" / ns / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SECRET_YAML.format(name=name, ns=ns, value=value))
    path.chmod(0o600)
    return path


def test_init_encrypts_a_strong_token_to_every_host_and_admin(repo: Repo) -> None:
    r = repo.cli("secrets", "init")
    assert r.returncode == 0, r.stderr
    token_file = repo.secrets / "k3s-token.age"
    tokens = set()
    for who in ("srv", "w1", "w2", "admin"):
        out = age_decrypt(token_file, repo.keys[who])
        assert out.returncode == 0, (who, out.stderr)
        tokens.add(out.stdout)
    (token,) = tokens
    assert len(token) >= 64 and int(token, 16) >= 0  # 32 random bytes, hex
    assert token.decode() not in r.stdout + r.stderr  # never printed unless asked
    assert (
        age_decrypt(token_file, repo.keys["w3"]).returncode != 0
    )  # not in the inventory
    rules = (repo.secrets / "secrets.nix").read_text()
    assert pub(repo.keys["w1"]).split()[1] in rules
    assert '"k3s-token.age".publicKeys = clusterHosts ++ admins;' in rules


def test_init_show_prints_the_token_and_refuses_to_overwrite(repo: Repo) -> None:
    r = repo.cli("secrets", "init", "--show")
    assert r.returncode == 0, r.stderr
    shown = r.stdout.strip().splitlines()[-1]
    assert (
        age_decrypt(repo.secrets / "k3s-token.age", repo.keys["admin"]).stdout.decode()
        == shown
    )
    before = repo.snapshot()
    again = repo.cli("secrets", "init")
    assert again.returncode == 2
    assert (
        "exists already" in again.stderr and len(again.stderr.strip().splitlines()) == 1
    )
    assert repo.snapshot() == before
    forced = repo.cli("secrets", "init", "--force", "--show")
    assert forced.returncode == 0 and forced.stdout.strip() != shown


def test_init_takes_an_existing_token_from_stdin(repo: Repo) -> None:
    token = "K10" + "ab" * 20
    r = repo.cli("secrets", "init", "--token-stdin", input=token + "\n")
    assert r.returncode == 0, r.stderr
    assert (
        age_decrypt(repo.secrets / "k3s-token.age", repo.keys["w2"]).stdout
        == token.encode()
    )
    short = repo.cli("secrets", "init", "--force", "--token-stdin", input="abc\n")
    assert short.returncode == 2 and "at least 16" in short.stderr


def test_rules_file_is_deterministic(repo: Repo) -> None:
    assert repo.cli("secrets", "init").returncode == 0
    first = (repo.secrets / "secrets.nix").read_bytes()
    assert repo.cli("secrets", "rekey", "-i", str(repo.keys["admin"])).returncode == 0
    assert (repo.secrets / "secrets.nix").read_bytes() == first


def test_import_encrypts_for_servers_only_and_wipes_the_plaintext(repo: Repo) -> None:
    assert repo.cli("secrets", "init").returncode == 0
    src = plain_secret(repo, "apps", "db", "Zx9-very-Secret-Pa55word")
    r = repo.cli("secrets", "import", "--output", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [
        {"source": str(src), "file": "manifests/apps-db.yaml.age", "status": "added"}
    ]
    assert not src.exists() and not src.parent.exists()
    enc = repo.secrets / "manifests" / "apps-db.yaml.age"
    ok = age_decrypt(enc, repo.keys["srv"])
    assert ok.returncode == 0 and b"Zx9-very-Secret-Pa55word" in ok.stdout
    assert (
        age_decrypt(enc, repo.keys["w1"]).returncode != 0
    )  # agents never see manifests
    assert age_decrypt(enc, repo.keys["admin"]).returncode == 0
    rules = (repo.secrets / "secrets.nix").read_text()
    assert '"manifests/apps-db.yaml.age".publicKeys = servers ++ admins;' in rules
    check = repo.cli("secrets", "check", "-i", str(repo.keys["srv"]))
    assert check.returncode == 0, check.stdout + check.stderr


def test_import_of_an_explicit_file_and_a_replacement(
    repo: Repo, tmp_path: Path
) -> None:
    f = tmp_path / "s.yaml"
    f.write_text(SECRET_YAML.format(name="api", ns="web", value="first-Value-123456"))
    assert repo.cli("secrets", "import", str(f)).returncode == 0
    assert not f.exists()
    f.write_text(SECRET_YAML.format(name="api", ns="web", value="second-Value-123456"))
    r = repo.cli("secrets", "import", "--keep-plaintext", "--output", "json", str(f))
    assert json.loads(r.stdout)[0]["status"] == "replaced"
    assert f.exists()
    out = age_decrypt(
        repo.secrets / "manifests" / "web-api.yaml.age", repo.keys["srv"]
    ).stdout
    assert b"second-Value-123456" in out


def test_import_rejects_what_is_not_a_v1_secret_and_writes_nothing(
    repo: Repo, tmp_path: Path
) -> None:
    good = plain_secret(repo, "apps", "db", "Zx9-very-Secret-Pa55word")
    cases = {
        "configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: a}\ndata: {a: b}\n",
        "nons.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: x}\nstringData: {a: b}\n",
        "badb64.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: x, namespace: a}\ndata: {a: '!!notbase64'}\n",
        "two.yaml": SECRET_YAML.format(name="a", ns="b", value="v")
        + "---\n"
        + SECRET_YAML.format(name="c", ns="b", value="v"),
        "broken.yaml": "apiVersion: v1\nkind: [Secret\n",
    }
    before = repo.snapshot()
    for fname, text in cases.items():
        bad = tmp_path / fname
        bad.write_text(text)
        r = repo.cli("secrets", "import", str(good), str(bad))
        assert r.returncode == 2, (fname, r.stderr)
        assert r.stderr.count("\n") == 1 and str(bad) in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
        assert repo.snapshot() == before
        assert good.exists() and bad.exists()  # nothing wiped either


def test_import_refuses_a_namespace_that_contradicts_its_directory(repo: Repo) -> None:
    path = plain_secret(repo, "apps", "db", "x")
    path.write_text(SECRET_YAML.format(name="db", ns="other", value="x"))
    r = repo.cli("secrets", "import")
    assert r.returncode == 2 and "does not match its directory" in r.stderr


def test_rekey_after_a_host_is_removed_locks_it_out(repo: Repo) -> None:
    assert repo.cli("secrets", "init").returncode == 0
    plain_secret(repo, "apps", "db", "Zx9-very-Secret-Pa55word")
    assert repo.cli("secrets", "import").returncode == 0
    token_file = repo.secrets / "k3s-token.age"
    manifest = repo.secrets / "manifests" / "apps-db.yaml.age"
    manifest_before = manifest.read_bytes()
    assert age_decrypt(token_file, repo.keys["w2"]).returncode == 0
    repo.write_inventory({"srv": "server", "w1": "agent"})
    stale = repo.cli("secrets", "check", "--no-scan")
    assert stale.returncode == 1
    assert "can still be decrypted by w2 (removed)" in stale.stdout
    assert "secrets.nix: out of date" in stale.stdout
    r = repo.cli("secrets", "rekey", "-i", str(repo.keys["admin"]), "--output", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [
        {
            "file": "k3s-token.age",
            "status": "rekeyed",
            "added": [],
            "removed": ["w2 (removed)"],
        },
        {
            "file": "manifests/apps-db.yaml.age",
            "status": "unchanged",
            "added": [],
            "removed": [],
        },
    ]
    assert age_decrypt(token_file, repo.keys["w2"]).returncode != 0
    assert age_decrypt(token_file, repo.keys["w1"]).returncode == 0
    assert manifest.read_bytes() == manifest_before  # untouched: no churn in git
    assert repo.cli("secrets", "check", "--no-scan").returncode == 0


def test_rekey_after_a_host_is_added_lets_it_in(repo: Repo) -> None:
    assert repo.cli("secrets", "init").returncode == 0
    repo.write_inventory({"srv": "server", "w1": "agent", "w2": "agent", "w3": "agent"})
    r = repo.cli("secrets", "rekey", "-i", str(repo.keys["admin"]), "--output", "json")
    assert json.loads(r.stdout)[0]["added"] == ["w3"]
    assert age_decrypt(repo.secrets / "k3s-token.age", repo.keys["w3"]).returncode == 0


def test_rekey_needs_an_identity_that_is_a_recipient(repo: Repo) -> None:
    assert repo.cli("secrets", "init").returncode == 0
    repo.write_inventory({"srv": "server", "w1": "agent"})
    before = repo.snapshot()
    r = repo.cli("secrets", "rekey", "-i", str(repo.keys["w3"]))
    assert r.returncode == 2 and "k3s-token.age" in r.stderr
    assert r.stderr.count("\n") == 1
    assert repo.snapshot() == before
    missing = repo.cli("secrets", "rekey", "-i", str(repo.root / "nope"))
    assert missing.returncode == 2 and "cannot read identity" in missing.stderr
    unreadable = repo.root / "notakey"
    unreadable.write_text("hello")
    r = repo.cli("secrets", "rekey", "-i", str(unreadable))
    assert r.returncode == 2 and "not an SSH private key" in r.stderr
    assert repo.snapshot() == before


def test_corrupt_ciphertext_is_one_line_exit_2_and_nothing_rewritten(
    repo: Repo,
) -> None:
    assert repo.cli("secrets", "init").returncode == 0
    plain_secret(repo, "apps", "db", "Zx9-very-Secret-Pa55word")
    assert repo.cli("secrets", "import").returncode == 0
    manifest = repo.secrets / "manifests" / "apps-db.yaml.age"
    data = manifest.read_bytes()
    manifest.write_bytes(data[:40])  # truncated inside the header
    repo.write_inventory({"srv": "server", "w1": "agent"})  # so the token needs a rekey
    before = repo.snapshot()
    r = repo.cli("secrets", "rekey", "-i", str(repo.keys["admin"]))
    assert r.returncode == 2 and "apps-db.yaml.age" in r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert repo.snapshot() == before
    # A good header with a damaged body: the header is fine, decryption is not.
    manifest.write_bytes(data[:-5] + b"xxxxx")
    r = repo.cli("secrets", "rekey", "--force", "-i", str(repo.keys["admin"]))
    assert r.returncode == 2 and "apps-db.yaml.age" in r.stderr
    check = repo.cli("secrets", "check", "--no-scan", "-i", str(repo.keys["srv"]))
    assert check.returncode == 1 and "does not decrypt for srv" in check.stdout


def test_unknown_host_and_bad_keys_are_user_errors(repo: Repo) -> None:
    r = repo.cli("secrets", "hostkeys", "nosuchhost")
    assert r.returncode == 2 and "no host 'nosuchhost'" in r.stderr
    repo.write_inventory(HOSTS_WITH_W1, host_keys={"w1": "ssh-ed25519 AAAAplaceholder"})
    r = repo.cli("secrets", "init")
    assert r.returncode == 2
    assert "hosts.w1.ssh.host_key" in r.stderr and r.stderr.count("\n") == 1
    repo.write_inventory(HOSTS_WITH_W1, host_keys={"w1": ""})
    r = repo.cli("secrets", "init")
    assert r.returncode == 2 and "host w1 has no host key" in r.stderr
    assert not (repo.secrets / "k3s-token.age").exists()


HOSTS_WITH_W1 = {"srv": "server", "w1": "agent"}


def test_edit_round_trips_and_leaves_no_plaintext(repo: Repo, tmp_path: Path) -> None:
    assert repo.cli("secrets", "init").returncode == 0
    plain_secret(repo, "apps", "db", "Zx9-very-Secret-Pa55word")
    assert repo.cli("secrets", "import").returncode == 0
    seen = tmp_path / "seen"
    editor = tmp_path / "editor.sh"
    # Records where it was asked to edit and that file's mode, then changes the value.
    editor.write_text(
        "#!/bin/sh\n"
        f'echo "$1" > {seen}\n'
        f'stat -c %a "$1" >> {seen}\n'
        f'stat -c %a "$(dirname "$1")" >> {seen}\n'
        'sed -i "s/Zx9-very-Secret-Pa55word/New-Secret-Value-42abc/" "$1"\n'
    )
    editor.chmod(0o755)
    r = repo.cli(
        "secrets",
        "edit",
        "apps-db",
        "-i",
        str(repo.keys["admin"]),
        env={"EDITOR": str(editor)},
    )
    assert r.returncode == 0, r.stderr
    where, mode, dmode = seen.read_text().split()
    assert mode == "600" and dmode == "700"
    assert not Path(where).exists() and not Path(where).parent.exists()
    out = age_decrypt(
        repo.secrets / "manifests" / "apps-db.yaml.age", repo.keys["srv"]
    ).stdout
    assert b"New-Secret-Value-42abc" in out and b"Zx9" not in out


def test_edit_without_changes_rewrites_nothing(repo: Repo, tmp_path: Path) -> None:
    assert repo.cli("secrets", "init").returncode == 0
    before = repo.snapshot()
    r = repo.cli(
        "secrets",
        "edit",
        "k3s-token",
        "-i",
        str(repo.keys["admin"]),
        env={"EDITOR": "true"},
    )
    assert r.returncode == 0 and "no changes" in r.stderr
    assert repo.snapshot() == before


def test_edit_wipes_the_plaintext_when_the_editor_fails(
    repo: Repo, tmp_path: Path
) -> None:
    assert repo.cli("secrets", "init").returncode == 0
    seen = tmp_path / "seen"
    editor = tmp_path / "editor.sh"
    editor.write_text(f'#!/bin/sh\necho "$1" > {seen}\necho changed > "$1"\nexit 3\n')
    editor.chmod(0o755)
    before = repo.snapshot()
    r = repo.cli(
        "secrets",
        "edit",
        "k3s-token",
        "-i",
        str(repo.keys["admin"]),
        env={"EDITOR": str(editor)},
    )
    assert r.returncode == 1 and "status 3" in r.stderr
    assert not Path(seen.read_text().strip()).exists()
    assert repo.snapshot() == before


def test_edit_refuses_an_invalid_result(repo: Repo, tmp_path: Path) -> None:
    assert repo.cli("secrets", "init").returncode == 0
    plain_secret(repo, "apps", "db", "Zx9-very-Secret-Pa55word")
    assert repo.cli("secrets", "import").returncode == 0
    seen = tmp_path / "seen"
    editor = tmp_path / "editor.sh"
    editor.write_text(
        f'#!/bin/sh\necho "$1" > {seen}\nsed -i "s/kind: Secret/kind: ConfigMap/" "$1"\n'
    )
    editor.chmod(0o755)
    before = repo.snapshot()
    r = repo.cli(
        "secrets",
        "edit",
        "apps-db",
        "-i",
        str(repo.keys["admin"]),
        env={"EDITOR": str(editor)},
    )
    assert r.returncode == 2 and "kind Secret" in r.stderr and r.stderr.count("\n") == 1
    assert not Path(seen.read_text().strip()).exists()
    assert repo.snapshot() == before
    unknown = repo.cli("secrets", "edit", "nope", env={"EDITOR": "true"})
    assert unknown.returncode == 2 and "no secret named 'nope'" in unknown.stderr


def test_check_catches_a_plaintext_secret_committed_by_mistake(repo: Repo) -> None:
    assert repo.cli("secrets", "init").returncode == 0
    plain_secret(repo, "apps", "db", "Zx9-very-Secret-Pa55word")
    assert repo.cli("secrets", "import").returncode == 0
    assert repo.cli("secrets", "check").returncode == 0
    # Someone pastes the decrypted Secret into k8s/ and a token into a host file.
    leak = repo.root / "k8s" / "apps" / "db.yaml"
    leak.parent.mkdir(parents=True)
    leak.write_text(
        SECRET_YAML.format(name="db", ns="apps", value="Zx9-very-Secret-Pa55word")
    )
    token = age_decrypt(
        repo.secrets / "k3s-token.age", repo.keys["admin"]
    ).stdout.decode()
    host_nix = repo.root / "hosts" / "srv.nix"
    host_nix.write_text(f'{{ services.k3s.token = "{token}"; }}\n')
    r = repo.cli("secrets", "check", "-i", str(repo.keys["admin"]), "--output", "json")
    assert r.returncode == 1
    found = {(f["path"], f["kind"]) for f in json.loads(r.stdout)["findings"]}
    assert ("k8s/apps/db.yaml", "secret-manifest") in found
    assert ("k8s/apps/db.yaml", "known-secret") in found
    assert ("hosts/srv.nix", "known-secret") in found
    assert ("hosts/srv.nix", "secret-value") in found
    assert token not in r.stdout and "Zx9-very-Secret-Pa55word" not in r.stdout
    # Without identities the heuristics alone still catch both.
    r = repo.cli("secrets", "check", "--output", "json")
    found = {(f["path"], f["kind"]) for f in json.loads(r.stdout)["findings"]}
    assert {
        ("k8s/apps/db.yaml", "secret-manifest"),
        ("hosts/srv.nix", "secret-value"),
    } <= found


def test_check_catches_stray_plaintext_in_the_manifests_dir(repo: Repo) -> None:
    assert repo.cli("secrets", "init").returncode == 0
    stray = repo.secrets / "manifests" / "db.yaml"
    stray.parent.mkdir()
    stray.write_text(
        SECRET_YAML.format(name="db", ns="apps", value="Zx9-very-Secret-Pa55word")
    )
    r = repo.cli("secrets", "check", "--output", "json")
    assert r.returncode == 1
    kinds = {(f["path"], f["kind"]) for f in json.loads(r.stdout)["findings"]}
    assert ("secrets/manifests/db.yaml", "stray") in kinds
    assert ("secrets/manifests/db.yaml", "secret-manifest") in kinds


def test_check_fails_when_a_needed_host_is_missing_from_a_file(repo: Repo) -> None:
    assert repo.cli("secrets", "init").returncode == 0
    rules = (repo.secrets / "secrets.nix").read_bytes()
    # A token encrypted by hand, forgetting w2: the rules are right, the file is not.
    import subprocess

    subprocess.run(
        ["age", "-e", "-R", f"{repo.keys['srv']}.pub", "-R", f"{repo.keys['w1']}.pub",
         "-R", f"{repo.keys['admin']}.pub", "-o", str(repo.secrets / "k3s-token.age")],
        input=b"0123456789abcdef0123456789abcdef", check=True, timeout=30,
    )  # fmt: skip
    r = repo.cli("secrets", "check", "--no-scan")
    assert r.returncode == 1 and "cannot be decrypted by w2" in r.stdout
    assert (repo.secrets / "secrets.nix").read_bytes() == rules


def test_private_temp_dir_is_0700_and_gone_after_an_exception() -> None:
    from hydradeploy.secrets.plaintext import private_dir

    kept: Path | None = None
    try:
        with private_dir() as d:
            kept = d
            assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
            (d / "x").write_bytes(b"plaintext")
            raise RuntimeError("editor crashed")
    except RuntimeError:
        pass
    assert kept is not None and not kept.exists()


def test_check_on_a_fresh_clone_notes_missing_keys_without_failing(repo: Repo) -> None:
    repo.write_inventory({"srv": "server", "w1": "agent"}, host_keys={"w1": ""})
    r = repo.cli("secrets", "check")
    assert (
        r.returncode == 0
        and "note: " in r.stderr
        and "host w1 has no host key" in r.stderr
    )
    repo.write_inventory({"srv": "server", "w1": "agent"})
    assert repo.cli("secrets", "init").returncode == 0
    repo.write_inventory({"srv": "server", "w1": "agent"}, host_keys={"w1": ""})
    r = repo.cli("secrets", "check", "--output", "json")
    assert r.returncode == 1
    assert any(
        "host w1 has no host key" in f["message"]
        for f in json.loads(r.stdout)["findings"]
    )


def test_hostkeys_from_inventory_writes_keys_and_rules(repo: Repo) -> None:
    r = repo.cli("secrets", "hostkeys", "--from-inventory", "--output", "json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert [row["change"] for row in report["hosts"]] == ["new", "new", "new"]
    stored = (repo.secrets / "host-keys.toml").read_text()
    assert pub(repo.keys["w2"]).split()[1] in stored
    assert (repo.secrets / "secrets.nix").is_file()
    repo.write_inventory(HOSTS_WITH_W1, host_keys={"w1": ""})
    bad = repo.cli("secrets", "hostkeys", "--from-inventory")
    assert bad.returncode == 2 and "hosts.w1.ssh.host_key is not set" in bad.stderr


def test_a_reinstalled_host_gets_its_new_key_by_rekey(repo: Repo) -> None:
    assert repo.cli("secrets", "init").returncode == 0
    # w1 was reinstalled: it now has w3's key pair.
    repo.write_inventory(HOSTS, host_keys={"w1": pub(repo.keys["w3"])})
    r = repo.cli("secrets", "check", "--no-scan", "--output", "json")
    messages = [f["message"] for f in json.loads(r.stdout)["findings"]]
    assert any("cannot be decrypted by w1" in m for m in messages)
    assert any("can still be decrypted by w1 (old key)" in m for m in messages)
    assert repo.cli("secrets", "rekey", "-i", str(repo.keys["admin"])).returncode == 0
    assert age_decrypt(repo.secrets / "k3s-token.age", repo.keys["w3"]).returncode == 0
    assert age_decrypt(repo.secrets / "k3s-token.age", repo.keys["w1"]).returncode != 0


HOSTS = {"srv": "server", "w1": "agent", "w2": "agent"}


def test_a_removed_admin_is_named_and_locked_out_by_rekey(repo: Repo) -> None:
    repo.write_inventory(HOSTS, admins=("admin", "admin2"))
    assert repo.cli("secrets", "init").returncode == 0
    repo.write_inventory(HOSTS, admins=("admin",))
    r = repo.cli("secrets", "rekey", "-i", str(repo.keys["admin"]), "--output", "json")
    assert json.loads(r.stdout)[0]["removed"] == ["admin:admin2 (removed)"]
    assert (
        age_decrypt(repo.secrets / "k3s-token.age", repo.keys["admin2"]).returncode != 0
    )
