# NVIDIA GPUs for k3s pods, one coherent path (DESIGN.md seed mistake 1):
#
#   driver (hardware.nvidia, open kernel modules)
#   -> nvidia-container-toolkit writes a CDI spec at boot
#      (/var/run/cdi/nvidia-container-toolkit.json, devices named by GPU UUID, plus `all`)
#   -> k3s's OWN containerd (a system containerd would be ignored by k3s) gets a runtime
#      handler `nvidia` from services.k3s.containerdConfigTemplate, whose binary is
#      nvidia-container-runtime.cdi: it turns NVIDIA_VISIBLE_DEVICES into CDI devices of
#      that spec and hands the container to runc
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

    # Added to k3s's own containerd config (version 3, containerd 2.x); the base template
    # keeps everything k3s generates. k3s's own nvidia detection looks in FHS paths that
    # do not exist on NixOS, so it does not add a second `nvidia` table.
    services.k3s.containerdConfigTemplate = ''
      {{ template "base" . }}

      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.'${cfg.runtimeHandler}']
        runtime_type = "io.containerd.runc.v2"

      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.'${cfg.runtimeHandler}'.options]
        BinaryName = "${pkgs.nvidia-container-toolkit.tools}/bin/nvidia-container-runtime.cdi"
        SystemdCgroup = {{ .SystemdCgroup }}
    '';

    # The CDI spec must exist before k3s (and so the device plugin) starts.
    systemd.services.k3s = {
      after = [ "nvidia-container-toolkit-cdi-generator.service" ];
      wants = [ "nvidia-container-toolkit-cdi-generator.service" ];
    };

    environment.systemPackages = [ pkgs.nvidia-container-toolkit ];
  };
}
