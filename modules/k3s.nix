# k3s on one inventory host: server (cluster-init or joining, embedded etcd with
# scheduled snapshots) or agent; flags from the inventory (modules/lib/k3s-flags.nix);
# the token only through tokenFile (agenix); exactly the firewall ports the role and
# flannel backend need (modules/lib/firewall.nix); on servers, every YAML under k8s/ as
# an auto-deploy manifest and Secret manifests only as decrypted agenix files
# (modules/lib/manifests.nix).
{ config, lib, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.hydra.k3s;
  inv = config.hydra.inventory;
  host = config.hydra.host;
  name = config.hydra.hostName;

  k3s = import ./lib/k3s-flags.nix {
    inventory = inv;
    host = name;
    tokenFile = config.hydra.secrets.k3sTokenFile;
  };
  firewall = import ./lib/firewall.nix {
    role = host.role;
    flannelBackend = inv.cluster.flannel_backend;
    embeddedEtcd = inv.cluster.embedded_etcd;
    peers = builtins.filter (a: a != host.address) inv.server_addresses;
  };
  manifests = import ./lib/manifests.nix {
    k8sDir = cfg.manifestsDir;
    secretsDir = config.hydra.secrets.dir;
  };
  deploysManifests = host.is_server && cfg.deployManifests;
in
{
  imports = [
    ./options.nix
    ./secrets.nix
  ];

  options.hydra.k3s = {
    enable = mkOption {
      type = types.bool;
      default = true;
      description = "Run k3s on this host as the inventory says (server or agent).";
    };

    manifestsDir = mkOption {
      type = types.nullOr types.path;
      default = ../k8s;
      defaultText = lib.literalExpression "./k8s";
      description = ''
        Directory whose YAML files (recursively) the servers auto-deploy. A plain file
        declaring `kind: Secret` stops evaluation: encrypt it under secrets/manifests/.
      '';
    };

    deployManifests = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Whether servers link the manifests of `manifestsDir` and the decrypted Secret
        manifests into the k3s auto-deploy directory. Every server gets the same files.
      '';
    };

    extraFlags = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "--kube-apiserver-arg=audit-log-maxage=30" ];
      description = ''
        More k3s arguments, after the ones derived from the inventory. Each item is one
        argument (`"--flag=value with spaces"` stays whole): unlike
        `services.k3s.extraFlags`, whose items nixpkgs pastes into ExecStart unquoted,
        these are quoted for systemd.
      '';
    };

    computed = mkOption {
      type = types.raw;
      readOnly = true;
      default = {
        inherit k3s firewall;
        manifests = builtins.attrNames manifests.k3sManifests;
        secretManifests = builtins.attrNames manifests.ageSecrets;
      };
      description = "What this module derived from the inventory (read-only, for inspection).";
    };
  };

  config = lib.mkIf cfg.enable {
    services.k3s = {
      enable = true;
      inherit (k3s)
        role
        serverAddr
        clusterInit
        nodeName
        nodeIP
        nodeLabel
        nodeTaint
        disable
        ;
      tokenFile = config.hydra.secrets.k3sTokenFile;
      # quoted for ExecStart= (modules/lib/systemd-arg.nix): one list item, one argument
      extraFlags = k3s.extraFlags ++ map (import ./lib/systemd-arg.nix) cfg.extraFlags;
      gracefulNodeShutdown.enable = true;
      manifests = lib.mkIf deploysManifests manifests.k3sManifests;
    };

    # Decrypted by agenix straight into the manifests directory, mode 0400, root only.
    age.secrets = lib.mkIf deploysManifests manifests.ageSecrets;

    # agenix writes secrets during activation, or in agenix-install-secrets.service when
    # systemd-sysusers is used; order k3s after the latter (a no-op when it is absent).
    systemd.services.k3s.after = [ "agenix-install-secrets.service" ];

    networking.firewall = {
      inherit (firewall)
        allowedTCPPorts
        allowedUDPPorts
        allowedUDPPortRanges
        trustedInterfaces
        ;
      # etcd (2379-2380/tcp) only from the other servers
      extraCommands = lib.mkIf (
        !config.networking.nftables.enable && firewall.iptablesCommands != [ ]
      ) (lib.concatStringsSep "\n" firewall.iptablesCommands);
      extraInputRules = lib.mkIf (
        config.networking.nftables.enable && firewall.nftablesRules != [ ]
      ) (lib.concatStringsSep "\n" firewall.nftablesRules);
    };

    # Pod networking and the many watches of a kubelet.
    boot.kernelModules = [
      "br_netfilter"
      "overlay"
    ];
    boot.kernel.sysctl = {
      "net.ipv4.ip_forward" = 1;
      "net.bridge.bridge-nf-call-iptables" = 1;
      "net.bridge.bridge-nf-call-ip6tables" = 1;
      "fs.inotify.max_user_instances" = 8192;
      "fs.inotify.max_user_watches" = 524288;
    };
  };
}
