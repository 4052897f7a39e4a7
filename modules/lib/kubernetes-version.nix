# The Kubernetes minor ("1.35") that hydradeploy validates manifests against, read from
# tools/hydradeploy/src/hydradeploy/versions.py so Python and Nix cannot disagree.
# The flake's `k3s-version` check compares it with the pinned k3s.
versionsPy:
let
  m = builtins.match ''.*KUBERNETES_VERSION = "([0-9]+\.[0-9]+)\.[0-9]+".*'' (builtins.readFile versionsPy);
in
if m == null then throw "hydra: KUBERNETES_VERSION not found in ${toString versionsPy}" else builtins.head m
