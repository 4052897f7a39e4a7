# Kubernetes name rules (DNS-1123 labels, label keys and values, taints), the Nix twin
# of tools/hydradeploy/src/hydradeploy/kube_names.py. Functions return an error string,
# or null when the value is valid.
let
  u = import ./util.nix;
  inherit (builtins) elem stringLength match;

  dns1123Label = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
  dns1123Subdomain = "${dns1123Label}([.]${dns1123Label})*";
  labelName = "[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?";
  taintEffects = [
    "NoSchedule"
    "PreferNoSchedule"
    "NoExecute"
  ];

  # Labels a kubelet may set on its own node inside kubernetes.io / k8s.io
  # (NodeRestriction admission).
  kubeletAllowedLabels = [
    "kubernetes.io/hostname"
    "kubernetes.io/arch"
    "kubernetes.io/os"
    "beta.kubernetes.io/instance-type"
    "node.kubernetes.io/instance-type"
    "failure-domain.beta.kubernetes.io/region"
    "failure-domain.beta.kubernetes.io/zone"
    "topology.kubernetes.io/region"
    "topology.kubernetes.io/zone"
  ];
  kubeletAllowedPrefixes = [
    "kubelet.kubernetes.io/"
    "node.kubernetes.io/"
  ];
in
rec {
  inherit taintEffects;

  isDns1123Label = name: stringLength name <= 63 && match dns1123Label name != null;

  labelKeyError =
    key:
    let
      p = u.rpartition "/" key;
      name = p.after;
    in
    if key == "" then
      "empty key"
    else if
      p.found && (p.before == "" || stringLength p.before > 253 || match dns1123Subdomain p.before == null)
    then
      "prefix '${p.before}' is not a DNS subdomain"
    else if name == "" || stringLength name > 63 || match labelName name == null then
      "name part '${name}' must be 1-63 characters of [A-Za-z0-9-_.], alphanumeric at both ends"
    else
      null;

  labelValueError =
    value:
    if value == "" then
      null
    else if stringLength value > 63 || match labelName value == null then
      "value '${value}' must be at most 63 characters of [A-Za-z0-9-_.], alphanumeric at both ends"
    else
      null;

  nodeLabelError =
    key: value:
    let
      err = let k = labelKeyError key; in if k != null then k else labelValueError value;
      prefix = (u.rpartition "/" key).before;
      restricted =
        elem prefix [
          "kubernetes.io"
          "k8s.io"
        ]
        || u.hasSuffix ".kubernetes.io" prefix
        || u.hasSuffix ".k8s.io" prefix;
      allowed =
        elem key kubeletAllowedLabels || builtins.any (pre: u.hasPrefix pre key) kubeletAllowedPrefixes;
    in
    if err != null then
      err
    else if restricted && !allowed then
      "'${key}' is in a namespace a node may not label itself with (NodeRestriction)"
    else
      null;

  # `key[=value]:Effect` -> { key; value; effect; error; }
  parseTaint =
    spec:
    let
      colon = u.rpartition ":" spec;
      eq = u.partition "=" colon.before;
      keyErr = labelKeyError eq.before;
      err = if keyErr != null then keyErr else labelValueError eq.after;
    in
    {
      key = eq.before;
      value = eq.after;
      effect = colon.after;
      error =
        if !colon.found then
          "taint '${spec}' needs the form key[=value]:Effect"
        else if !(elem colon.after taintEffects) then
          "taint '${spec}' has effect '${colon.after}', not one of NoSchedule, PreferNoSchedule, NoExecute"
        else if err != null then
          "taint '${spec}': ${err}"
        else
          null;
    };
}
