# Small helpers on top of builtins, so the pure functions under modules/lib/ evaluate
# with plain `nix-instantiate --eval` (no nixpkgs, no flake inputs).
let
  inherit (builtins)
    attrNames
    concatLists
    concatStringsSep
    elemAt
    filter
    foldl'
    genList
    head
    isString
    length
    listToAttrs
    match
    stringLength
    substring
    ;
in
rec {
  # [ a b ] -> [ { index = 0; value = a; } ... ]
  imap0 = f: list: genList (i: f i (elemAt list i)) (length list);

  concatMap = f: list: concatLists (map f list);

  optional = cond: value: if cond then [ value ] else [ ];
  optionals = cond: values: if cond then values else [ ];
  optionalAttrs = cond: attrs: if cond then attrs else { };

  mapAttrsToList = f: attrs: map (name: f name attrs.${name}) (attrNames attrs);

  filterAttrs =
    pred: attrs:
    listToAttrs (
      concatMap (
        name:
        optional (pred name attrs.${name}) {
          inherit name;
          value = attrs.${name};
        }
      ) (attrNames attrs)
    );

  hasPrefix = prefix: s: substring 0 (stringLength prefix) s == prefix;
  hasSuffix =
    suffix: s:
    let
      ls = stringLength s;
      lx = stringLength suffix;
    in
    ls >= lx && substring (ls - lx) lx s == suffix;
  removePrefix =
    prefix: s: if hasPrefix prefix s then substring (stringLength prefix) (stringLength s) s else s;

  matches = regex: s: isString s && match regex s != null;

  # Split at the last occurrence of `sep` (a single character), like Python's rpartition.
  rpartition =
    sep: s:
    let
      m = match "(.*)[${sep}]([^${sep}]*)" s;
    in
    if m == null then
      {
        found = false;
        before = "";
        after = s;
      }
    else
      {
        found = true;
        before = head m;
        after = elemAt m 1;
      };

  # Split at the first occurrence of `sep` (a single character), like Python's partition.
  partition =
    sep: s:
    let
      m = match "([^${sep}]*)[${sep}](.*)" s;
    in
    if m == null then
      {
        found = false;
        before = s;
        after = "";
      }
    else
      {
        found = true;
        before = head m;
        after = elemAt m 1;
      };

  splitString = sep: s: filter isString (builtins.split sep s);

  # Remove duplicates, keeping the first occurrence (order preserved).
  unique = foldl' (acc: x: if builtins.elem x acc then acc else acc ++ [ x ]) [ ];

  sum = foldl' (a: b: a + b) 0;

  mod = a: b: a - (a / b) * b;

  sortStrings = builtins.sort builtins.lessThan;

  # Every value that occurs more than once in a list of { key; path; } claims, as
  # { key = [ paths ]; }.
  groupBy =
    keyOf: list:
    foldl' (
      acc: x:
      let
        k = keyOf x;
      in
      acc // { ${k} = (acc.${k} or [ ]) ++ [ x ]; }
    ) { } list;

  join = parts: concatStringsSep "." (filter (p: p != "") parts);

  toInt =
    s:
    let
      m = match "0*([0-9]+)" s;
    in
    if m == null then null else builtins.fromJSON (if head m == "" then "0" else head m);

  lowerHex = "0123456789abcdef";
  hexDigit = c: (builtins.listToAttrs (imap0 (i: ch: { name = ch; value = i; }) (splitChars lowerHex))).${c};
  splitChars = s: genList (i: substring i 1 s) (stringLength s);
  fromHex = s: foldl' (acc: c: acc * 16 + hexDigit c) 0 (splitChars (builtins.replaceStrings [ "A" "B" "C" "D" "E" "F" ] [ "a" "b" "c" "d" "e" "f" ] s));
}
