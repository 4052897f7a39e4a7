# What the k3s servers auto-deploy (/var/lib/rancher/k3s/server/manifests):
#  - every YAML file under k8s/ (recursively) -> a `services.k3s.manifests.<name>` entry
#    by `source` (a store path: fine, these hold no secrets);
#  - every secrets/manifests/<name>.yaml.age -> an agenix secret decrypted straight into
#    the manifests directory, mode 0400 (never through the Nix store).
# A plain YAML under k8s/ that declares `kind: Secret` is refused: it would land
# world-readable in /nix/store.
#
#   (import ./manifests.nix) { k8sDir; secretsDir; }   (either may be null or missing)
{
  k8sDir ? null,
  secretsDir ? null,
  manifestDir ? "/var/lib/rancher/k3s/server/manifests",
}:
let
  u = import ./util.nix;
  inherit (builtins)
    attrNames
    concatStringsSep
    filter
    length
    pathExists
    readDir
    readFile
    ;

  exists = p: p != null && pathExists p;

  # Relative paths of the regular files under dir (sorted, deterministic).
  walk =
    dir: prefix:
    let
      entries = readDir dir;
    in
    u.concatMap (
      name:
      let
        type = entries.${name};
        rel = if prefix == "" then name else "${prefix}/${name}";
      in
      if type == "directory" then
        walk (dir + "/${name}") rel
      else if type == "regular" || type == "symlink" then
        [ rel ]
      else
        [ ]
    ) (attrNames entries);

  isYaml = p: u.hasSuffix ".yaml" p || u.hasSuffix ".yml" p;
  # kustomize inputs and editor leftovers are not manifests.
  isManifest =
    p:
    let
      base = (u.rpartition "/" p).after;
    in
    isYaml p
    && !(builtins.elem base [
      "kustomization.yaml"
      "kustomization.yml"
    ])
    && !u.hasPrefix "." base;

  declaresSecret =
    file:
    builtins.any (line: builtins.match "kind:[[:space:]]*[\"']?Secret[\"']?[[:space:]]*" line != null) (
      u.splitString "\n" (readFile file)
    );

  # k8s/platform/nvidia/device-plugin.yaml -> hydra-platform-nvidia-device-plugin.yaml
  targetOf = rel: "hydra-" + builtins.replaceStrings [ "/" ] [ "-" ] rel;
  nameOf =
    rel:
    let
      t = targetOf rel;
    in
    builtins.head (builtins.match "(.*)[.]ya?ml" t);

  yamlFiles = if exists k8sDir then filter isManifest (walk k8sDir "") else [ ];
  secretYaml = filter (rel: declaresSecret (k8sDir + "/${rel}")) yamlFiles;

  manifests = map (rel: {
    name = nameOf rel;
    target = targetOf rel;
    source = k8sDir + "/${rel}";
    relative = "k8s/${rel}";
  }) yamlFiles;

  ageDir = if exists secretsDir then secretsDir + "/manifests" else null;
  ageFiles =
    if exists ageDir then
      filter (n: u.hasSuffix ".yaml.age" n || u.hasSuffix ".yml.age" n) (
        attrNames (u.filterAttrs (_: t: t == "regular") (readDir ageDir))
      )
    else
      [ ];
  secretManifests = map (
    file:
    let
      base = builtins.head (builtins.match "(.*)[.]ya?ml[.]age" file);
    in
    {
      # the age.secrets attribute name
      name = "manifest-${base}";
      file = ageDir + "/${file}";
      path = "${manifestDir}/hydra-secret-${base}.yaml";
      mode = "0400";
      owner = "root";
      group = "root";
      # decrypted in place: a symlink into /run/agenix would do too, a real file keeps
      # the manifests directory self-contained.
      symlink = false;
      relative = "secrets/manifests/${file}";
    }
  ) ageFiles;

  targets = map (m: m.target) manifests;
  clashes = filter (t: length (filter (x: x == t) targets) > 1) targets;
in
if secretYaml != [ ] then
  throw "hydra: ${concatStringsSep ", " (map (r: "k8s/${r}") secretYaml)} declares a Secret; plain manifests land world-readable in /nix/store. Encrypt it instead: hydradeploy secrets (secrets/manifests/<name>.yaml.age)"
else if clashes != [ ] then
  throw "hydra: manifests under k8s/ map to the same target file: ${concatStringsSep ", " (u.unique clashes)}"
else
  {
    inherit manifests secretManifests;
    # services.k3s.manifests value
    k3sManifests = builtins.listToAttrs (
      map (m: {
        inherit (m) name;
        value = {
          inherit (m) source target;
        };
      }) manifests
    );
    # age.secrets value
    ageSecrets = builtins.listToAttrs (
      map (s: {
        inherit (s) name;
        value = {
          inherit (s)
            file
            path
            mode
            owner
            group
            symlink
            ;
        };
      }) secretManifests
    );
  }
