# What k3s is told on one node, derived from the validated inventory (inventory.nix
# `build`). Returns both the values for the nixpkgs `services.k3s.*` options and the
# full command line they amount to (`flags`, the arguments k3s receives, for review and
# tests). `extraFlags` is `extraArgs` quoted for systemd (systemd-arg.nix): the upstream
# module pastes extraFlags into ExecStart= as they are.
#
#   (import ./k3s-flags.nix) { inventory; host; tokenFile ? null; }
# `host` is a host name or a microVM guest name.
{
  inventory,
  host,
  tokenFile ? null,
}:
let
  u = import ./util.nix;
  systemdArg = import ./systemd-arg.nix;
  inherit (inventory) cluster;
  node = inventory.nodes.${host} or (throw "hydra: '${host}' is not a host or microVM guest of the inventory");
  isServer = node.role == "server";
  isInit = isServer && cluster.cluster_init == host;
  labelFlags = u.mapAttrsToList (k: v: "${k}=${v}") node.labels;

  settings = {
    role = node.role;
    # The cluster-init server starts the cluster; everyone else joins through the API.
    serverAddr = if isInit then "" else cluster.api_endpoint;
    clusterInit = isInit;
    nodeName = host;
    nodeIP = node.address;
    nodeLabel = labelFlags;
    nodeTaint = node.taints;
    # --disable is a server flag; agents inherit the choice.
    disable = if isServer then cluster.disable else [ ];
    extraArgs =
      u.optionals isServer (
        [
          "--flannel-backend=${cluster.flannel_backend}"
          "--cluster-cidr=${cluster.cluster_cidr}"
          "--service-cidr=${cluster.service_cidr}"
          "--tls-san=${apiHost}"
        ]
        ++ u.optionals cluster.embedded_etcd [
          "--etcd-snapshot-schedule-cron=${cluster.etcd_snapshot_schedule}"
          "--etcd-snapshot-retention=${toString cluster.etcd_snapshot_retention}"
        ]
      );
  };
  # The API endpoint's host, for the server certificate (may be a VIP or DNS name).
  apiHost =
    let
      m = builtins.match "https://(.*):[0-9]+" cluster.api_endpoint;
    in
    if m == null then node.address else builtins.replaceStrings [ "[" "]" ] [ "" "" ] (builtins.head m);
in
settings
// {
  extraFlags = map systemdArg settings.extraArgs;
  flags =
    [ node.role ]
    ++ u.optional settings.clusterInit "--cluster-init"
    ++ u.optional (settings.serverAddr != "") "--server=${settings.serverAddr}"
    ++ u.optional (tokenFile != null) "--token-file=${toString tokenFile}"
    ++ [
      "--node-name=${host}"
      "--node-ip=${node.address}"
    ]
    ++ map (l: "--node-label=${l}") settings.nodeLabel
    ++ map (t: "--node-taint=${t}") settings.nodeTaint
    ++ map (d: "--disable=${d}") settings.disable
    ++ settings.extraArgs;
}
