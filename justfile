# hydra: `just --list` shows every recipe. A fresh machine: tools/quickstart RECIPE.
set shell := ["bash", "-euo", "pipefail", "-c"]

export HYDRA_ROOT := justfile_directory()
export PATH := justfile_directory() + "/.venv/bin:" + env_var('PATH')

# List the recipes
default:
    @just --list --unsorted

# Rehearse the main job in a local lab: deploy the example cluster, break an agent, watch it roll back (root)
demo:
    tools/demo

# Deploy hosts (names, @tags, or --on @tag,name), servers before agents, with join checks and rollback
deploy HOST *ARGS:
    hydradeploy deploy {{HOST}} {{ARGS}}

# Deploy every host of the inventory in cluster order
deploy-all *ARGS:
    hydradeploy deploy --all {{ARGS}}

# What a deploy would do, in order, without touching anything
plan *ARGS="--all":
    hydradeploy plan {{ARGS}}

# Roll hosts back (each to its last verified generation, or one host --to N) and re-check them
rollback HOST *ARGS:
    hydradeploy rollback {{HOST}} {{ARGS}}

# Reboot hosts one at a time: cordon, drain, reboot, wait for the boot, join checks, uncordon
reboot HOST *ARGS:
    hydradeploy reboot {{HOST}} {{ARGS}}

# Generation, k3s, node Ready and GPUs per host (? where a host could not tell)
status *HOSTS:
    hydradeploy status {{HOSTS}}

# Join and health checks only; exit 1 when one fails
check *HOSTS:
    hydradeploy check {{HOSTS}}

# Objects of manifests removed from k8s/ that k3s keeps (lists; add --yes to delete them)
prune *ARGS:
    hydradeploy prune {{ if ARGS =~ "--yes" { replace(ARGS, "--yes", "") } else { "--dry-run " + ARGS } }}

# Convert the example containers (podman host, compose stack) into k8s/converted/
convert *ARGS:
    hydradeploy convert podman-to-k8s --json hosts/examples/podman-host/containers.json --host hydra-ai {{ARGS}}
    hydradeploy convert compose-to-k8s hosts/examples/compose/docker-compose.yml --host hydra-ai --project-dir /srv/ai-system {{ARGS}}

# Fail when k8s/converted/ drifts from what the converter writes now
convert-check:
    just convert --check

# Check the k8s/ manifests: strict schemas, CRD rules, inventory cross-checks
k8s-check:
    pytest -c tests/pytest.ini tests/k8s -q

# Secrets: recipients match the inventory, every file decrypts, no plaintext in the repo
secrets-check:
    hydradeploy secrets check

# Encrypt the Secret manifests the converter left in secrets/plain/
secrets-import:
    hydradeploy secrets import

# Validate the inventory (the same rules the flake applies)
inventory-check:
    hydradeploy inventory check

# The Nix-side tests that need no nixpkgs (pure functions, Python/Nix agreement)
test-nix:
    pytest -c tests/pytest.ini tests/nix tests/test_inventory.py

# Evaluate every host, build hydradeploy with its tests, validate manifests (needs nixpkgs: internet)
nix-check:
    nix flake check --print-build-logs

# Format the Nix files (needs nixpkgs: internet)
fmt:
    nix fmt

# Tests of the lab of systemd-nspawn hosts (root)
test-lab:
    pytest -c tests/pytest.ini tests/lab

# Lint and type-check the Python tool (ruff, mypy)
lint:
    ruff check tools/hydradeploy tests
    ruff format --check tools/hydradeploy tests
    cd tools/hydradeploy && mypy

# The whole test suite: lint, every test (the lab tests need root), the secrets check
test: lint
    pytest -c tests/pytest.ini tests
    hydradeploy secrets check

# Issue 15's fault set (lab, root: signals, SIGKILL at each point, locks, host keys, full store, jump hosts) N times in a row, timed; stops at the first failure
test-faults N="1":
    for i in $(seq 1 {{N}}); do \
      start=$(date +%s); \
      pytest -c tests/pytest.ini -q -p no:cacheprovider tests/deploy/test_lab_safety.py tests/lab/test_lab_guard.py \
        tests/deploy/test_lab_deploy.py::test_ctrl_c_during_a_wave_leaves_consistent_generations \
        tests/deploy/test_lab_deploy.py::test_a_second_concurrent_deploy_is_refused_by_the_lock \
        tests/deploy/test_lab_deploy.py::test_jump_host_from_the_inventory \
        tests/deploy/test_lab_deploy.py::test_network_cut_by_the_new_closure_is_rolled_back_by_the_host \
        || { echo "fault set: round $i of {{N}} failed after $(( $(date +%s) - start )) s" >&2; exit 1; }; \
      echo "fault set: round $i of {{N}} passed in $(( $(date +%s) - start )) s"; \
    done

# Benchmarks: converter, lab, deploy, closure copy (they print figures)
bench:
    python tests/bench/bench_convert.py
    python tests/bench/bench_lab.py
    python tests/bench/bench_deploy.py
    python tests/bench/bench_copy.py
