# hydra-amd: k3s agent, Radeon 780M (ROCm), host of two microVM k3s agents.
# Everything cluster-related comes from hosts/inventory.toml through the hydra modules
# (flake.nix wires them); this file holds only what is specific to the machine.
{ ... }:
{
  imports = [ ./hardware.nix ];

  boot.loader.systemd-boot.enable = true;
  boot.loader.efi.canTouchEfiVariables = true;

  # The NixOS release this machine was first installed with; never change it afterwards.
  system.stateVersion = "26.05";
}
