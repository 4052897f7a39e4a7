# Example (seed podman-nixos): a standalone NixOS host running podman containers, the
# starting point that `hydradeploy convert podman-to-k8s` turns into k3s manifests.
# Not a cluster member. Evaluated as nixosConfigurations.example-podman-host:
#   nix eval --json .#nixosConfigurations.example-podman-host.config.virtualisation.oci-containers.containers
# prints what the converter reads (hosts/examples/podman-host/containers.json).
{ lib, ... }:
{
  # containers.nix is the converter's example fragment; guarded so this host still
  # evaluates before it exists.
  imports = lib.optional (builtins.pathExists ./containers.nix) ./containers.nix;

  networking.hostName = "podman-host";
  virtualisation.podman.enable = true;
  virtualisation.oci-containers.backend = lib.mkDefault "podman";

  services.openssh = {
    enable = true;
    settings.PasswordAuthentication = false;
  };

  # PLACEHOLDER hardware: replace with `nixos-generate-config --show-hardware-config`.
  nixpkgs.hostPlatform = lib.mkDefault "x86_64-linux";
  boot.loader.systemd-boot.enable = true;
  fileSystems."/" = {
    device = "/dev/disk/by-label/nixos";
    fsType = "ext4";
  };
  fileSystems."/boot" = {
    device = "/dev/disk/by-label/boot";
    fsType = "vfat";
  };
  system.stateVersion = "26.05";
}
