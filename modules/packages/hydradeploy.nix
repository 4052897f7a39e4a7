# hydradeploy from tools/hydradeploy, with its tests run in the build: every test that
# needs neither root, the lab (network namespaces, sshd), nor a Nix daemon inside the
# build sandbox. tests/nix runs nix-instantiate and is covered by `nix flake check`
# evaluating the same functions in the nixosConfigurations.
{
  python3Packages,
  kubernetes-validate,
  age,
  src,
}:
python3Packages.buildPythonApplication {
  pname = "hydradeploy";
  version = "0.1.0";
  pyproject = true;
  inherit src;
  sourceRoot = "source/tools/hydradeploy";

  build-system = [ python3Packages.setuptools ];
  dependencies = with python3Packages; [
    click
    rich
    pyyaml
    fabric
    deepdiff
    jinja2
  ];

  nativeCheckInputs = [
    python3Packages.pytest
    python3Packages.hypothesis
    kubernetes-validate
    age
  ];

  # The tests live at the repository root (tests/), next to the inventory they read.
  checkPhase = ''
    runHook preCheck
    cd ../..
    export HYDRA_ROOT=$PWD HOME=$TMPDIR
    python -m pytest -c tests/pytest.ini tests \
      -m "not lab and not slow" \
      --ignore=tests/nix --ignore=tests/lab --ignore=tests/bench \
      -p no:cacheprovider
    cd tools/hydradeploy
    runHook postCheck
  '';

  pythonImportsCheck = [ "hydradeploy" ];
  meta.mainProgram = "hydradeploy";
}
