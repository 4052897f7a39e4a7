# One command-line argument written so that systemd's ExecStart= parsing gives it back
# unchanged, as one argument.
#
# Why: nixpkgs' k3s module joins `services.k3s.extraFlags` into ExecStart with
# `lib.concatStringsSep " \\\n "` and no quoting
# (nixos/modules/services/cluster/rancher/default.nix, `ExecStart`, nixpkgs 011c1bdb102b),
# so `--etcd-snapshot-schedule-cron=0 */6 * * *` reached k3s as five arguments.
#
# systemd.service(5), "COMMAND LINES": items are split on whitespace; double quotes may
# wrap a whole item (the opening quote at the start of the item, the closing one followed
# by whitespace or the end) and C-style escapes are understood, so `\` and `"` inside are
# written `\\` and `\"`; `$` starts an environment variable (a literal one is `$$`); `%`
# starts a specifier (systemd.unit(5), "SPECIFIERS": a literal one is `%%`); a lone `;`
# separates commands. Control characters are not allowed at all.
arg:
let
  plain = builtins.match "[A-Za-z0-9_@+=:,./-]+" arg != null;
  escaped =
    builtins.replaceStrings
      [ "\\" "\"" "$" "%" ]
      [ "\\\\" "\\\"" "$$" "%%" ]
      arg;
in
if builtins.match ".*[[:cntrl:]].*" arg != null then
  throw "hydra: k3s argument ${builtins.toJSON arg} contains a control character, which systemd's ExecStart= cannot carry"
else if plain then
  arg
else
  "\"${escaped}\""
