# Evaluates the hydra modules with nixpkgs' module system (lib only) for one inventory
# host, to check the glue: which values the modules hand to the upstream options.
#
# This is NOT an evaluation of a NixOS system. The upstream option trees (services,
# networking, hardware, microvm, age, ...) are declared here as untyped containers that
# merge like NixOS does (attribute sets recursively, lists concatenated), because nixpkgs
# itself is not available on this machine; whether those option names and types exist
# upstream is checked by `nix flake check` in CI (docs/upstream-options.md lists them).
# `pkgs` holds only the few package paths the modules interpolate, as labelled strings.
# With `agenix` (a checkout of the pinned agenix), its real module declares `age.*`.
{
  lib,
  repo,
  inventoryFile,
  hostName,
  secretsDir ? repo + "/secrets",
  extraModules ? [ ],
  agenix ? null,
}:
let
  inherit (lib) mkOption types;

  upstream = types.mkOptionType {
    name = "upstream-stand-in";
    description = "stand-in for an upstream option tree";
    merge =
      loc: defs:
      let
        values = map (d: d.value) defs;
      in
      if builtins.all builtins.isAttrs values then
        (types.attrsOf upstream).merge loc defs
      else if builtins.all builtins.isList values then
        builtins.concatLists values
      else
        lib.mergeEqualOption loc defs;
  };

  tree = mkOption {
    type = upstream;
    default = { };
  };

  standIns = {
    options =
      lib.genAttrs (lib.optional (agenix == null) "age" ++ [
        "boot"
        "environment"
        "fileSystems"
        "hardware"
        "microvm"
        "networking"
        "nix"
        "nixpkgs"
        "security"
        "services"
        "system"
        "systemd"
        "time"
        "users"
      ]) (_: tree)
      // {
        warnings = mkOption {
          type = types.listOf types.str;
          default = [ ];
        };
        assertions = mkOption {
          type = types.listOf types.unspecified;
          default = [ ];
        };
      };
    config = {
      system.stateVersion = "26.05";
      networking.nftables.enable = false;
      # NixOS's sshd default, which agenix's default identityPaths reads
      services.openssh.hostKeys = [
        {
          type = "ed25519";
          path = "/etc/ssh/ssh_host_ed25519_key";
        }
      ];
      boot.kernelPackages.nvidiaPackages.stable = {
        type = "derivation";
        name = "nvidia-x11-stand-in";
        outPath = "<pkgs.linuxPackages.nvidiaPackages.stable>";
      };
    };
  };

  label = name: "<pkgs.${name}>";
  pkgs = {
    # a labelled stand-in for the store path of the file
    writeText = name: _text: "<pkgs.writeText ${name}>";
    nvidia-container-toolkit = {
      tools = "/nix/store/00000000000000000000000000000000-nvidia-container-toolkit-tools";
    };
    rocmPackages = {
      rocminfo = label "rocmPackages.rocminfo";
      rocm-smi = label "rocmPackages.rocm-smi";
    };
    age = label "age";
    clinfo = label "clinfo";
    git = label "git";
    htop = label "htop";
    jq = label "jq";
  };

  evaluated = lib.evalModules {
    specialArgs = { inherit pkgs; };
    modules = [
      standIns
    ]
    ++ lib.optional (agenix != null) (agenix + "/modules/age.nix")
    ++ [
      (repo + "/modules/common.nix")
      (repo + "/modules/secrets.nix")
      (repo + "/modules/k3s.nix")
      (repo + "/modules/containerd-nvidia.nix")
      (repo + "/modules/amdgpu-rocm.nix")
      (repo + "/modules/microvm-workers.nix")
      {
        hydra.inventoryFile = inventoryFile;
        hydra.hostName = hostName;
        hydra.secrets.dir = secretsDir;
      }
    ]
    ++ extraModules;
  };
in
evaluated.config
