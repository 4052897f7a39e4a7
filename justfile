# hydra: `just --list` shows every recipe. Set up a fresh machine with tools/quickstart.
set shell := ["bash", "-euo", "pipefail", "-c"]
set positional-arguments := false

export HYDRA_ROOT := justfile_directory()
export PATH := justfile_directory() + "/.venv/bin:" + env_var('PATH')

# List the recipes
default:
    @just --list --unsorted

# Lint and type-check the Python tool (ruff, mypy)
lint:
    ruff check tools/hydradeploy tests
    ruff format --check tools/hydradeploy tests
    cd tools/hydradeploy && mypy

# The whole test suite: lint, then every test (the lab tests need root)
test: lint
    pytest -c tests/pytest.ini tests
