# kubernetes-validate (PyPI wheel; ships the JSON schemas of every Kubernetes release),
# used by the `manifests` check and hydradeploy's tests. Not in nixpkgs.
{ python3Packages }:
python3Packages.buildPythonPackage rec {
  pname = "kubernetes-validate";
  version = "1.37.0";
  format = "wheel";
  src = python3Packages.fetchPypi {
    pname = "kubernetes_validate";
    inherit version format;
    dist = "py3";
    python = "py3";
    hash = "sha256-hRNtAYontQ7H/ASdkCv6UZP1l2gH5sD0COOrb+B4ytk=";
  };
  dependencies = with python3Packages; [
    importlib-resources
    jsonschema
    packaging
    pyyaml
    referencing
    typing-extensions
  ];
  pythonImportsCheck = [ "kubernetes_validate" ];
}
