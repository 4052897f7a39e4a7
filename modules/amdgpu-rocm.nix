# AMD GPUs (e.g. the Radeon 780M iGPU, gfx1103) as a k3s agent: amdgpu in the initrd,
# ROCm userspace and OpenCL, the render/video groups, and a per-host
# HSA_OVERRIDE_GFX_VERSION (DESIGN.md seed mistake 7: not ROC_ENABLE_PRE_VEGA).
# The AMD device plugin (k8s/platform/) runs privileged and reads /dev/kfd and /dev/dri;
# the host only has to provide the driver and those devices.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib) mkOption types;
  cfg = config.hydra.amd;
  host = config.hydra.host;
  admin = config.hydra.inventory.cluster.admin_user;
in
{
  imports = [ ./options.nix ];

  options.hydra.amd = {
    enable = mkOption {
      type = types.bool;
      default = builtins.elem "amd" host.gpu_vendors;
      defaultText = lib.literalExpression "the host has an amd GPU in the inventory";
      description = "amdgpu, ROCm and OpenCL for AMD GPUs on this host.";
    };

    gfxVersion = mkOption {
      type = types.nullOr (types.strMatching "[0-9]+\\.[0-9]+\\.[0-9]+");
      default = host.rocm_gfx_version;
      defaultText = lib.literalExpression "the host's rocm_gfx_version in the inventory";
      example = "11.0.0";
      description = ''
        HSA_OVERRIDE_GFX_VERSION for ROCm on GPUs ROCm does not list (gfx1103 / 780M
        runs with 11.0.0 or 11.0.2). Set for host processes here; pods get it from their
        manifests (k8s/), which read the same inventory value.
      '';
    };
  };

  config = lib.mkIf cfg.enable {
    boot.initrd.kernelModules = [ "amdgpu" ];
    hardware.graphics.enable = true;
    # ROCm OpenCL ICD (rocmPackages.clr)
    hardware.amdgpu.opencl.enable = true;

    environment.systemPackages = [
      pkgs.rocmPackages.rocminfo
      pkgs.rocmPackages.rocm-smi
      pkgs.clinfo
    ];
    environment.variables = lib.mkIf (cfg.gfxVersion != null) {
      HSA_OVERRIDE_GFX_VERSION = cfg.gfxVersion;
    };

    # /dev/kfd and /dev/dri/renderD* belong to these groups.
    users.users.${admin}.extraGroups = [
      "render"
      "video"
    ];
  };
}
