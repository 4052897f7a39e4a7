# The template k3s renders into its own containerd's config.toml, adding the runtime
# handler that GPU pods select with `runtimeClassName: nvidia`.
#
#   (import ./containerd-template.nix) { binaryName; runtimeHandler ? "nvidia"; }
#
# Which file, and which config version (k3s v1.35, pkg/agent/containerd/config.go,
# `templateGenerations`, read at k3s commit 06ea261ce3f1; containerd 2 came with k3s PR
# #11626, first in v1.31.6/v1.32.2):
#   config-v3.toml.tmpl  -> rendered with the version-3 base, checked FIRST
#   config.toml.tmpl     -> rendered with the legacy version-2 base, only when no v3 file
# nixpkgs' `services.k3s.containerdConfigTemplate` can only write config.toml.tmpl
# (nixos/modules/services/cluster/rancher/default.nix, `containerdConfigTemplateFile`,
# read at nixpkgs 011c1bdb102b), so a v3 template there would be pasted after a
# `version = 2` base. We write config-v3.toml.tmpl ourselves, in the same way nixpkgs
# installs its file: a systemd-tmpfiles `L+` link to a store file.
#
# Table names are containerd 2's version-3 CRI runtime plugin
# (containerd docs/cri/config.md, "Runtime classes", "In containerd 2.x"):
#   [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.<handler>]
#   [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.<handler>.options]
# Only new tables are added: the base template already defines
# `[plugins.'io.containerd.cri.v1.runtime']`, and TOML forbids defining a table twice.
# CDI needs no containerd setting on this path: nvidia-container-runtime.cdi reads the
# spec in /var/run/cdi itself.
{
  binaryName,
  runtimeHandler ? "nvidia",
  program ? "k3s",
}:
let
  runtime = "plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.'${runtimeHandler}'";
  dir = "/var/lib/rancher/${program}/agent/etc/containerd";
  fileName = "config-v3.toml.tmpl";
in
{
  inherit dir fileName;
  path = "${dir}/${fileName}";
  # The `version` k3s's base template for this file name writes.
  configVersion = 3;
  text = ''
    {{ template "base" . }}

    [${runtime}]
      runtime_type = "io.containerd.runc.v2"

    [${runtime}.options]
      BinaryName = "${binaryName}"
      SystemdCgroup = {{ .SystemdCgroup }}
  '';
}
