# The microVM k3s agents of one host, from the validated inventory: addresses, a MAC
# and a tap name derived from the guest name (stable across rebuilds), and the k3s
# agent settings each guest runs with.
#
#   (import ./microvms.nix) { inventory; host; bridge ? "br-hydra"; tokenDir ? ...; }
{
  inventory,
  host,
  bridge ? "br-hydra",
  # Where the host's agenix puts each guest's copy of the token (one directory per
  # guest, shared read-only into that guest only).
  tokenDir ? "/run/hydra-microvm-secrets",
  guestTokenMount ? "/run/hydra-secrets",
}:
let
  u = import ./util.nix;
  h = inventory.hosts.${host};
  hash = name: builtins.hashString "sha256" "hydra-microvm:${name}";
  byte = s: i: builtins.substring (2 * i) 2 s;
  # 02:xx:... is a locally administered unicast address.
  macOf =
    name:
    let
      d = hash name;
    in
    builtins.concatStringsSep ":" ([ "02" ] ++ map (byte d) [ 0 1 2 3 4 ]);
  # Linux interface names are at most 15 characters.
  tapOf = name: "vm-" + builtins.substring 0 11 (hash name);
in
map (
  vm:
  let
    k3s = import ./k3s-flags.nix {
      inherit inventory;
      host = vm.name;
      tokenFile = "${guestTokenMount}/k3s-token";
    };
  in
  {
    inherit (vm)
      name
      address
      vcpu
      memory_mb
      ;
    inherit host bridge;
    mac = macOf vm.name;
    tap = tapOf vm.name;
    hostTokenDir = "${tokenDir}/${vm.name}";
    hostTokenFile = "${tokenDir}/${vm.name}/k3s-token";
    guestTokenFile = "${guestTokenMount}/k3s-token";
    inherit guestTokenMount;
    inherit k3s;
    # Pods scheduled on the guest mount the inventory's NFS exports (k8s/platform/storage),
    # and the mount happens in the guest's kernel. So the guest gets NixOS's NFS client,
    # what nixpkgs' nixos/modules/tasks/filesystems/nfs.nix enables for
    # boot.supportedFilesystems = [ "nfs" ] (nfs-utils' mount.nfs, rpcbind, rpc-statd,
    # nfs-client.target), as hosts with NFS mounts already have (common.nix).
    nfsClient = inventory.storage != { };
  }
) h.microvms
