# CPU-only k3s agents in microvm.nix guests, declared from the inventory's `microvms` of
# this host. Each guest: its own address on a host bridge (tap + systemd-networkd), the
# host's /nix/store shared read-only (virtiofs), persistent k3s state on volumes
# (/var/lib/rancher, /var/lib/kubelet, and /etc/rancher with the node password), and the
# k3s token delivered without entering the store:
#
#   host agenix decrypts secrets/k3s-token.age a second time into
#   /run/hydra-microvm-secrets/<guest>/k3s-token (tmpfs, 0400 root, a real file), and only
#   that directory is shared read-only into that guest at /run/hydra-secrets.
#
# Guests get no age identity of their own: there is nothing to rekey when a guest is
# recreated, and a guest could read nothing more than the token it needs anyway.
# Needs microvm.nix's host module (nixosModules.microvm-workers of the flake brings it).
{ config, lib, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.hydra.microvms;
  inv = config.hydra.inventory;
  host = config.hydra.host;
  hostConfig = config;
  guests = import ./lib/microvms.nix {
    inventory = inv;
    host = config.hydra.hostName;
    inherit (cfg) bridge;
  };
  guestFirewall = import ./lib/firewall.nix {
    role = "agent";
    flannelBackend = inv.cluster.flannel_backend;
  };
  net = config.hydra.network;
  withPrefix = address: "${address}/${toString net.prefixLength}";

  guestModule = g: {
    networking.hostName = g.name;
    system.stateVersion = hostConfig.system.stateVersion;

    microvm = {
      inherit (cfg) hypervisor;
      vcpu = g.vcpu;
      mem = g.memory_mb;
      interfaces = [
        {
          type = "tap";
          id = g.tap;
          inherit (g) mac;
        }
      ];
      shares = [
        {
          proto = "virtiofs";
          tag = "ro-store";
          source = "/nix/store";
          mountPoint = "/nix/.ro-store";
        }
        {
          proto = "virtiofs";
          tag = "hydra-secrets";
          source = g.hostTokenDir;
          mountPoint = g.guestTokenMount;
          readOnly = true;
        }
      ];
      volumes = [
        {
          image = "k3s-rancher.img";
          mountPoint = "/var/lib/rancher";
          size = cfg.stateSizeMiB;
        }
        {
          image = "k3s-kubelet.img";
          mountPoint = "/var/lib/kubelet";
          size = 4096;
        }
        # The node password k3s keeps in /etc/rancher/node must survive reboots, or the
        # server refuses the guest when it registers again ("node password rejected").
        {
          image = "k3s-etc.img";
          mountPoint = "/etc/rancher";
          size = 64;
        }
      ];
    };

    networking.useNetworkd = true;
    networking.useDHCP = false;
    systemd.network.networks."10-uplink" = {
      matchConfig.MACAddress = g.mac;
      address = [ (withPrefix g.address) ];
      gateway = lib.optional (net.gateway != null) net.gateway;
      dns = net.nameservers;
    };

    services.k3s = {
      enable = true;
      inherit (g.k3s)
        role
        serverAddr
        nodeName
        nodeIP
        nodeLabel
        nodeTaint
        extraFlags
        ;
      tokenFile = g.guestTokenFile;
    };
    systemd.services.k3s.unitConfig.RequiresMountsFor = [
      g.guestTokenMount
      "/var/lib/rancher"
      "/var/lib/kubelet"
      "/etc/rancher"
    ];

    networking.firewall = {
      enable = true;
      inherit (guestFirewall)
        allowedTCPPorts
        allowedUDPPorts
        allowedUDPPortRanges
        trustedInterfaces
        ;
    };
    boot.kernelModules = [
      "br_netfilter"
      "overlay"
    ];
    # The NFS client for pods' NFS volumes (modules/lib/microvms.nix, nfsClient).
    boot.supportedFilesystems = lib.mkIf g.nfsClient [ "nfs" ];

    services.openssh = {
      enable = true;
      settings.PasswordAuthentication = false;
      settings.KbdInteractiveAuthentication = false;
    };
    users.users.root.openssh.authorizedKeys.keys = inv.cluster.admin_keys;
  }
  // lib.optionalAttrs (cfg.guestModules != [ ]) { imports = cfg.guestModules; };
in
{
  imports = [
    ./options.nix
    ./secrets.nix
  ];

  options.hydra.microvms = {
    enable = mkOption {
      type = types.bool;
      default = host.microvms != [ ];
      defaultText = lib.literalExpression "the host has microvms in the inventory";
      description = "Run this host's microVM k3s agents.";
    };

    bridge = mkOption {
      type = types.str;
      default = "br-hydra";
      description = "Host bridge the guests' taps and the uplink NIC join.";
    };

    uplink = mkOption {
      type = types.nullOr types.str;
      default = config.hydra.network.interface;
      defaultText = lib.literalExpression "config.hydra.network.interface";
      example = "enp1s0";
      description = ''
        The host NIC that joins the bridge; the host's own inventory address moves to the
        bridge. Hardware-specific: set hydra.network.interface in hosts/<name>/hardware.nix.
      '';
    };

    hypervisor = mkOption {
      type = types.enum [
        "cloud-hypervisor"
        "qemu"
      ];
      default = "cloud-hypervisor";
      description = "microvm.nix hypervisor (both support virtiofs shares).";
    };

    stateSizeMiB = mkOption {
      type = types.ints.positive;
      default = 20480;
      description = "Size of each guest's persistent /var/lib/rancher volume.";
    };

    guestModules = mkOption {
      type = types.listOf types.deferredModule;
      default = [ ];
      description = "Extra NixOS modules for every guest.";
    };

    guests = mkOption {
      type = types.raw;
      readOnly = true;
      default = guests;
      description = "The guests derived from the inventory (read-only, for inspection).";
    };
  };

  config = lib.mkMerge [
    # microvm.nix's host part (virtiofsd, microvm@ units) only where guests run.
    { microvm.host.enable = lib.mkDefault cfg.enable; }
    (lib.mkIf cfg.enable {
      assertions = [
        {
          assertion = cfg.uplink != null;
          message = "hydra.network.interface (or hydra.microvms.uplink): name the NIC of ${config.hydra.hostName} that joins bridge ${cfg.bridge} (hosts/${config.hydra.hostName}/hardware.nix).";
        }
      ];

      networking.useNetworkd = true;
      # The host's inventory address is static, on the bridge.
      networking.useDHCP = lib.mkDefault false;
      systemd.network = {
        enable = true;
        netdevs."10-${cfg.bridge}".netdevConfig = {
          Kind = "bridge";
          Name = cfg.bridge;
        };
        networks = {
          "10-uplink" = lib.mkIf (cfg.uplink != null) {
            matchConfig.Name = cfg.uplink;
            networkConfig.Bridge = cfg.bridge;
          };
          "11-microvm-taps" = {
            matchConfig.Name = "vm-*";
            networkConfig.Bridge = cfg.bridge;
          };
          "20-${cfg.bridge}" = {
            matchConfig.Name = cfg.bridge;
            address = [ (withPrefix host.address) ];
            gateway = lib.optional (net.gateway != null) net.gateway;
            dns = net.nameservers;
          };
        };
      };

      microvm.vms = builtins.listToAttrs (
        map (g: {
          inherit (g) name;
          value = {
            autostart = true;
            config = guestModule g;
          };
        }) guests
      );

      # One copy of the token per guest, in the directory only that guest sees.
      age.secrets = lib.mkIf config.hydra.secrets.hasK3sToken (
        builtins.listToAttrs (
          map (g: {
            name = "k3s-token-${g.name}";
            value = {
              file = config.hydra.secrets.dir + "/k3s-token.age";
              path = g.hostTokenFile;
              mode = "0400";
              owner = "root";
              group = "root";
              symlink = false;
            };
          }) guests
        )
      );
      # The shared directories exist even before the first token is decrypted.
      systemd.tmpfiles.rules = map (g: "d ${g.hostTokenDir} 0700 root root -") guests;
    })
  ];
}
