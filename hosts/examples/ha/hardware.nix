# PLACEHOLDER hardware shared by the example HA cluster's machines
# (nixosConfigurations.example-ha-*). For a real cluster, give each machine its own
# hosts/<name>/hardware.nix from `nixos-generate-config --show-hardware-config`.
{ lib, ... }:
{
  nixpkgs.hostPlatform = lib.mkDefault "x86_64-linux";
  boot.initrd.availableKernelModules = [
    "nvme"
    "xhci_pci"
    "virtio_pci"
    "virtio_blk"
  ];
  boot.loader.systemd-boot.enable = true;
  fileSystems."/" = {
    device = "/dev/disk/by-label/nixos";
    fsType = "ext4";
  };
  fileSystems."/boot" = {
    device = "/dev/disk/by-label/boot";
    fsType = "vfat";
    options = [ "umask=0077" ];
  };
  system.stateVersion = "26.05";
}
