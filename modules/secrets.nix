# agenix wiring. Layout (shared with `hydradeploy secrets`):
#   secrets/secrets.nix              recipients (generated from the inventory)
#   secrets/k3s-token.age            the cluster token
#   secrets/manifests/<n>.yaml.age   Secret manifests for the servers (see k3s.nix)
# Only files that exist are declared, so a fresh clone (no .age files yet) evaluates.
# Needs agenix's module (nixosModules.secrets of the flake brings it).
{ config, lib, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.hydra.secrets;
  tokenAge = cfg.dir + "/k3s-token.age";
in
{
  imports = [ ./options.nix ];

  options.hydra.secrets = {
    dir = mkOption {
      type = types.path;
      default = ../secrets;
      defaultText = lib.literalExpression "./secrets";
      description = "Directory of the age-encrypted secrets (agenix).";
    };

    hasK3sToken = mkOption {
      type = types.bool;
      readOnly = true;
      default = builtins.pathExists tokenAge;
      defaultText = lib.literalExpression "builtins.pathExists (config.hydra.secrets.dir + \"/k3s-token.age\")";
      description = "Whether `secrets/k3s-token.age` exists (read-only).";
    };

    k3sTokenFile = mkOption {
      type = types.nullOr types.str;
      readOnly = true;
      default = if cfg.hasK3sToken then config.age.secrets.k3s-token.path else null;
      defaultText = lib.literalExpression "config.age.secrets.k3s-token.path";
      description = ''
        Where the decrypted k3s token appears at run time (under /run/agenix, never in
        the Nix store), or null while secrets/k3s-token.age does not exist.
      '';
    };
  };

  config = {
    # Decrypted with the host's SSH host key (agenix's default identity when
    # services.openssh is on, which common.nix ensures).
    age.secrets = lib.mkIf cfg.hasK3sToken {
      k3s-token = {
        file = tokenAge;
        mode = "0400";
        owner = "root";
        group = "root";
      };
    };

    warnings = lib.optional (!cfg.hasK3sToken) ''
      hydra: ${toString tokenAge} does not exist yet, so k3s gets no tokenFile and agents cannot join. Create it with `hydradeploy secrets init`, then rebuild.
    '';
  };
}
