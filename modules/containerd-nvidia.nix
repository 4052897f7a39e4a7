# NVIDIA GPUs for k3s pods, one coherent path (DESIGN.md seed mistake 1):
#
#   driver (hardware.nvidia, open kernel modules)
#   -> nvidia-container-toolkit writes a CDI spec at boot
#      (/var/run/cdi/nvidia-container-toolkit.json, devices named by GPU UUID, plus `all`)
#   -> k3s's OWN containerd (a system containerd would be ignored by k3s) gets a runtime
#      handler `nvidia` from our config-v3.toml.tmpl (modules/lib/containerd-template.nix),
#      whose binary is nvidia-container-runtime.cdi: it turns NVIDIA_VISIBLE_DEVICES into
#      CDI devices of that spec and hands the container to runc
#   -> the NVIDIA device plugin (k8s/platform/gpu-nvidia, deviceListStrategy envvar,
#      deviceIDStrategy uuid) allocates `nvidia.com/gpu` and sets NVIDIA_VISIBLE_DEVICES
#      to the chosen UUIDs; pods run with `runtimeClassName: nvidia`
#      (k8s/platform/scheduling/runtime-classes.yaml, handler `nvidia`).
#
# CDI mode needs no nvidia-container-cli, ldconfig or FHS driver paths, which NixOS does
# not have; the spec carries the store paths of the driver. See docs/nixos.md.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib) mkOption types;
  cfg = config.hydra.nvidia;
  host = config.hydra.host;
  template = import ./lib/containerd-template.nix {
    inherit (cfg) runtimeHandler;
    binaryName = "${pkgs.nvidia-container-toolkit.tools}/bin/nvidia-container-runtime.cdi";
  };
in
{
  imports = [ ./options.nix ];

  options.hydra.nvidia = {
    enable = mkOption {
      type = types.bool;
      default = builtins.elem "nvidia" host.gpu_vendors;
      defaultText = lib.literalExpression "the host has an nvidia GPU in the inventory";
      description = "NVIDIA driver, container toolkit (CDI) and the `nvidia` runtime for k3s.";
    };

    open = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Use NVIDIA's open kernel modules. Required for RTX 50 (Blackwell) cards and
        recommended from Turing (RTX 20) on; set false only for older cards.
      '';
    };

    package = mkOption {
      type = types.package;
      default = config.boot.kernelPackages.nvidiaPackages.stable;
      defaultText = lib.literalExpression "config.boot.kernelPackages.nvidiaPackages.stable";
      description = "The NVIDIA driver package (must match the kernel).";
    };

    runtimeHandler = mkOption {
      type = types.str;
      default = "nvidia";
      description = ''
        containerd runtime handler name; the RuntimeClass `nvidia` in k8s/platform/ uses
        the same name in its `handler` field.
      '';
    };
  };

  config = lib.mkIf cfg.enable {
    # Loads the driver; no X server is enabled by this.
    services.xserver.videoDrivers = [ "nvidia" ];
    hardware.graphics.enable = true;
    hardware.nvidia = {
      inherit (cfg) open package;
      modesetting.enable = true;
      # Keeps the GPUs initialised on a headless node (faster pod start, stable state).
      nvidiaPersistenced = true;
    };

    # Generates the CDI spec (nvidia-container-toolkit-cdi-generator.service). UUID names
    # match the device plugin's deviceIDStrategy = uuid.
    hardware.nvidia-container-toolkit = {
      enable = true;
      device-name-strategy = "uuid";
    };

    nixpkgs.config.allowUnfreePredicate =
      pkg:
      builtins.elem (lib.getName pkg) [
        "nvidia-x11"
        "nvidia-settings"
        "nvidia-persistenced"
      ];

    # k3s's own containerd reads the `nvidia` handler from config-v3.toml.tmpl, rendered
    # with k3s's version-3 base (modules/lib/containerd-template.nix says why not
    # services.k3s.containerdConfigTemplate, which writes the version-2 file). k3s's own
    # nvidia detection looks only in /usr/local/nvidia/toolkit and /usr/bin (k3s
    # pkg/agent/containerd/runtimes.go, findNvidiaContainerRuntimes), which NixOS does not
    # fill, so it adds no second `nvidia` table.
    systemd.tmpfiles.settings."10-hydra-containerd".${template.path}."L+".argument =
      "${pkgs.writeText template.fileName template.text}";

    assertions = [
      {
        # k3s reads config-v3.toml.tmpl first and ignores config.toml.tmpl when both exist.
        assertion = (config.services.k3s.containerdConfigTemplate or null) == null;
        message = "hydra.nvidia: services.k3s.containerdConfigTemplate writes config.toml.tmpl, which k3s ignores next to our config-v3.toml.tmpl; extend modules/lib/containerd-template.nix instead.";
      }
    ];

    # The CDI spec must exist before k3s (and so the device plugin) starts.
    systemd.services.k3s = {
      after = [ "nvidia-container-toolkit-cdi-generator.service" ];
      wants = [ "nvidia-container-toolkit-cdi-generator.service" ];
    };

    environment.systemPackages = [ pkgs.nvidia-container-toolkit ];
  };
}
