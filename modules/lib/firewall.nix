# The ports a k3s node must open, by role and flannel backend (k3s networking
# requirements; DESIGN.md seed mistake 3):
#   6443/tcp        servers (API; agents reach it, their own load balancer listens locally)
#   10250/tcp       every node (kubelet: metrics-server, logs, exec)
#   2379-2380/tcp   servers only, and only from the other servers, with embedded etcd
#   8472/udp        vxlan only
#   51820-51821/udp wireguard-native only (IPv4, IPv6)
#   nothing         host-gw (plain routes) and none
#
#   (import ./firewall.nix) { role; flannelBackend; embeddedEtcd; peers; }
# `peers` are the addresses of the other servers; they become source-restricted rules.
{
  role,
  flannelBackend,
  embeddedEtcd ? true,
  peers ? [ ],
}:
let
  u = import ./util.nix;
  isServer = role == "server";
  etcd = isServer && embeddedEtcd;
  isV6 = a: builtins.match ".*:.*" a != null;
in
assert builtins.elem role [
  "server"
  "agent"
];
assert builtins.elem flannelBackend (import ./inventory.nix).flannelBackends;
{
  allowedTCPPorts = u.optional isServer 6443 ++ [ 10250 ];
  allowedUDPPorts = u.optional (flannelBackend == "vxlan") 8472;
  allowedUDPPortRanges = u.optional (flannelBackend == "wireguard-native") {
    from = 51820;
    to = 51821;
  };
  # The flannel interface whose traffic is pod-to-pod (trusted like the CNI bridge).
  trustedInterfaces =
    [ "cni0" ]
    ++ u.optional (flannelBackend == "vxlan") "flannel.1"
    ++ u.optionals (flannelBackend == "wireguard-native") [
      "flannel-wg"
      "flannel-wg-v6"
    ];
  # etcd client and peer ports, open only to the other servers.
  etcdPeers = if etcd then peers else [ ];
  iptablesCommands = u.concatMap (
    peer:
    [
      "${if isV6 peer then "ip6tables" else "iptables"} -A nixos-fw -p tcp -s ${peer} --dport 2379:2380 -j nixos-fw-accept"
    ]
  ) (if etcd then peers else [ ]);
  nftablesRules = map (
    peer: "${if isV6 peer then "ip6" else "ip"} saddr ${peer} tcp dport 2379-2380 accept"
  ) (if etcd then peers else [ ]);
}
