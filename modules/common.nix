# What every hydra host has: SSH with keys from the inventory (no passwords), the admin
# user, nix settings, time sync, a closed firewall, and the host's NFS mounts.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib) mkOption types;
  cfg = config.hydra.common;
  inv = config.hydra.inventory;
  host = config.hydra.host;
  keys = inv.cluster.admin_keys;
  admin = inv.cluster.admin_user;
  net = config.hydra.network;
  isV6 = builtins.match ".*:.*" host.address != null;
  # On a microVM host the address lives on the bridge (microvm-workers.nix).
  bridged = config.hydra.microvms.enable or false;
  static = net.interface != null && !bridged;
in
{
  imports = [ ./options.nix ];

  options.hydra.common = {
    enable = mkOption {
      type = types.bool;
      default = true;
      description = "SSH, admin user, nix settings, time sync, firewall and NFS mounts.";
    };

    passwordlessSudo = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Let the admin user (wheel) sudo without a password. The admin has no password at
        all (SSH keys only), so the alternative is setting one by hand on every host.
      '';
    };
  };

  config = lib.mkIf cfg.enable {
    networking.hostName = lib.mkDefault config.hydra.hostName;
    networking.firewall.enable = true;

    # The inventory address, statically, when hydra.network.interface names the NIC.
    networking.interfaces = lib.mkIf static {
      ${net.interface}.${if isV6 then "ipv6" else "ipv4"}.addresses = [
        {
          inherit (host) address;
          inherit (net) prefixLength;
        }
      ];
    };
    networking.defaultGateway = lib.mkIf (static && net.gateway != null && !isV6) net.gateway;
    networking.defaultGateway6 = lib.mkIf (static && net.gateway != null && isV6) net.gateway;
    networking.nameservers = lib.mkIf static net.nameservers;
    networking.useDHCP = lib.mkIf static (lib.mkDefault false);

    services.openssh = {
      enable = true;
      ports = [ host.ssh.port ];
      openFirewall = true;
      settings = {
        PasswordAuthentication = false;
        KbdInteractiveAuthentication = false;
        PermitRootLogin = "prohibit-password";
      };
    };

    users.mutableUsers = lib.mkDefault false;
    users.users.root.openssh.authorizedKeys.keys = keys;
    users.users.${admin} = {
      isNormalUser = true;
      extraGroups = [ "wheel" ];
      openssh.authorizedKeys.keys = keys;
    };
    security.sudo.wheelNeedsPassword = !cfg.passwordlessSudo;

    nix.settings = {
      experimental-features = [
        "nix-command"
        "flakes"
      ];
      # hydradeploy copies closures as root or as the admin user.
      trusted-users = [
        "root"
        "@wheel"
      ];
      auto-optimise-store = true;
    };
    nix.gc = {
      automatic = true;
      dates = "weekly";
      # keep enough generations for `hydradeploy rollback`
      options = "--delete-older-than 30d";
    };

    # etcd and TLS certificates need the clocks of all nodes in step.
    services.chrony.enable = true;
    time.timeZone = lib.mkDefault "UTC";

    # NFS mounts of the inventory, mounted on first access so a slow NAS never blocks boot.
    boot.supportedFilesystems = lib.mkIf (host.nfs != [ ]) [ "nfs" ];
    fileSystems = builtins.listToAttrs (
      map (n: {
        name = n.mountpoint;
        value = {
          device = "${n.server_address}:${n.export}";
          fsType = "nfs";
          options = [
            "x-systemd.automount"
            "noauto"
            "_netdev"
            "x-systemd.idle-timeout=600"
          ]
          ++ lib.optional n.read_only "ro";
        };
      }) host.nfs
    );

    environment.systemPackages = [
      # `hydradeploy secrets check --on-hosts` decrypts with the host key on the host.
      pkgs.age
      pkgs.git
      pkgs.htop
      pkgs.jq
    ];
  };
}
