# hydra-ai: k3s server (cluster-init), RTX 5090 + RTX 4090.
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
