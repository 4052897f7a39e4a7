# PLACEHOLDER hardware of hydra-ai. REPLACE this file with the output of
#   nixos-generate-config --show-hardware-config
# run on hydra-ai itself (disks, filesystems, initrd modules, CPU microcode). The values
# below only let the flake evaluate; booting them on real hardware will fail.
{ lib, ... }:
{
  nixpkgs.hostPlatform = lib.mkDefault "x86_64-linux";

  boot.initrd.availableKernelModules = [
    "nvme"
    "xhci_pci"
    "ahci"
    "usbhid"
    "sd_mod"
  ];
  boot.kernelModules = [ "kvm-amd" ];

  # REPLACE: your root (and boot) filesystems.
  fileSystems."/" = {
    device = "/dev/disk/by-label/nixos";
    fsType = "ext4";
  };
  fileSystems."/boot" = {
    device = "/dev/disk/by-label/boot";
    fsType = "vfat";
    options = [ "umask=0077" ];
  };

  hardware.cpu.amd.updateMicrocode = lib.mkDefault true;

  # REPLACE: the NIC that carries this host's inventory address (`ip link`), your LAN
  # gateway and DNS. Set `interface = null` to manage the network yourself (then make
  # sure the host really gets its inventory address, e.g. by a DHCP reservation).
  hydra.network = {
    interface = "enp1s0";
    gateway = "192.168.1.1";
    nameservers = [ "192.168.1.1" ];
  };
}
