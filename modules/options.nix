# Options every hydra module shares: which inventory, and which host of it this is.
# Imported by each module (the module system loads it once).
{ config, lib, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.hydra;
  inventoryLib = import ./lib/inventory.nix;
in
{
  options.hydra = {
    inventoryFile = mkOption {
      type = types.path;
      default = ../hosts/inventory.toml;
      defaultText = lib.literalExpression "./hosts/inventory.toml";
      description = ''
        The cluster inventory (TOML). It is validated with the same rules as
        `hydradeploy inventory check`; any problem stops evaluation with the full list.
      '';
    };

    hostName = mkOption {
      type = types.str;
      example = "hydra-ai";
      description = ''
        This machine's name in the inventory (a key of `[hosts]`). It also becomes the
        k3s node name and, by default, `networking.hostName`.
      '';
    };

    inventory = mkOption {
      type = types.raw;
      readOnly = true;
      default = inventoryLib.load cfg.inventoryFile;
      defaultText = lib.literalExpression "(import ./lib/inventory.nix).load config.hydra.inventoryFile";
      description = "The validated inventory with defaults filled in (read-only).";
    };

    network = {
      interface = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "enp1s0";
        description = ''
          The NIC that carries this host's inventory address. When set, the address is
          configured statically (k3s's --node-ip must be the address the host really
          has); when null, the network is left to you (e.g. a DHCP reservation).
          On a microVM host this NIC joins the guests' bridge instead.
        '';
      };
      prefixLength = mkOption {
        type = types.ints.between 1 128;
        default = 24;
        description = "Prefix length of the LAN of the inventory addresses.";
      };
      gateway = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "192.168.1.1";
        description = "Default gateway (with a static address, and for microVM guests).";
      };
      nameservers = mkOption {
        type = types.listOf types.str;
        default = [ ];
        description = "DNS servers (with a static address, and for microVM guests).";
      };
    };

    host = mkOption {
      type = types.raw;
      readOnly = true;
      default =
        cfg.inventory.hosts.${cfg.hostName} or (throw
          "hydra: hydra.hostName = \"${cfg.hostName}\" is not a host of ${toString cfg.inventoryFile} (hosts: ${lib.concatStringsSep ", " (builtins.attrNames cfg.inventory.hosts)})"
        );
      defaultText = lib.literalExpression "config.hydra.inventory.hosts.\${config.hydra.hostName}";
      description = "This host's entry of the inventory (read-only).";
    };
  };
}
