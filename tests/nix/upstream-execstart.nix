# ExecStart= of k3s.service exactly as nixpkgs' rancher module builds it from the
# `services.k3s.*` values, with builtins in place of lib (lib.optional/optionals,
# lib.flatten). Source: nixos/modules/services/cluster/rancher/default.nix, the
# `ExecStart = lib.concatStringsSep " \\\n " ( ... )` of systemd.services.${serviceName},
# read at nixpkgs 011c1bdb102b (the k3s module passes `--cluster-init` through
# extraBinFlags, nixos/modules/services/cluster/rancher/k3s.nix). Options this project
# never sets (token, agentToken*, configPath, nodeExternalIP, selinux, kubelet and
# kube-proxy config files) are kept as upstream writes them, with their defaults.
#
#   import ./upstream-execstart.nix { cfg = <services.k3s values>; extraBinFlags; }
{
  cfg,
  extraBinFlags ? [ ],
  package ? "/nix/store/00000000000000000000000000000000-k3s",
  name ? "k3s",
}:
let
  optional = c: v: if c then [ v ] else [ ];
  optionals = c: vs: if c then vs else [ ];
  flatten = x: if builtins.isList x then builtins.concatLists (map flatten x) else [ x ];
  c = {
    serverAddr = "";
    token = "";
    tokenFile = null;
    agentToken = "";
    agentTokenFile = null;
    configPath = null;
    disable = [ ];
    nodeName = null;
    nodeLabel = [ ];
    nodeTaint = [ ];
    nodeIP = null;
    nodeExternalIP = null;
    selinux = false;
    extraFlags = [ ];
  }
  // cfg;
in
builtins.concatStringsSep " \\\n " (
  [ "${package}/bin/${name} ${c.role}" ]
  ++ (optional (c.serverAddr != "") "--server ${c.serverAddr}")
  ++ (optional (c.token != "") "--token ${c.token}")
  ++ (optional (c.tokenFile != null) "--token-file ${c.tokenFile}")
  ++ (optional (c.agentToken != "") "--agent-token ${c.agentToken}")
  ++ (optional (c.agentTokenFile != null) "--agent-token-file ${c.agentTokenFile}")
  ++ (optional (c.configPath != null) "--config ${c.configPath}")
  ++ (map (d: "--disable=${d}") c.disable)
  ++ (optional (c.nodeName != null) "--node-name=${c.nodeName}")
  ++ (optionals (c.nodeLabel != [ ]) (map (l: "--node-label=${l}") c.nodeLabel))
  ++ (optionals (c.nodeTaint != [ ]) (map (t: "--node-taint=${t}") c.nodeTaint))
  ++ (optional (c.nodeIP != null) "--node-ip=${c.nodeIP}")
  ++ (optional (c.nodeExternalIP != null) "--node-external-ip=${c.nodeExternalIP}")
  ++ (optional c.selinux "--selinux")
  ++ extraBinFlags
  ++ (flatten c.extraFlags)
)
