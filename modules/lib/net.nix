# IP address and CIDR checks with the same verdicts as Python's `ipaddress`
# (ip_address, ip_network strict), used by the inventory validation.
# Not covered (both sides reject nothing else in practice): IPv4 netmask-form prefixes
# such as 10.0.0.0/255.255.0.0, which Python accepts and this rejects.
let
  u = import ./util.nix;
  inherit (builtins)
    all
    elemAt
    foldl'
    genList
    length
    match
    ;

  pow2 = n: foldl' (acc: _: acc * 2) 1 (genList (x: x) n);

  # "0".."255", no leading zeros (Python >= 3.9.5 rejects them).
  octet = s: match "0|[1-9][0-9]{0,2}" s != null && u.toInt s <= 255;

  ipv4Octets =
    s:
    let
      parts = u.splitString "[.]" s;
    in
    if length parts == 4 && all octet parts then map u.toInt parts else null;

  hextet = s: match "[0-9a-fA-F]{1,4}" s != null;

  toHex =
    n:
    let
      d = i: builtins.substring i 1 u.lowerHex;
    in
    d (n / 4096) + d (u.mod (n / 256) 16) + d (u.mod (n / 16) 16) + d (u.mod n 16);

  # The 8 hextet values of an IPv6 address (scope id allowed), or null.
  ipv6Hextets =
    s0:
    let
      scoped = match "([^%]*)%([^%]+)" s0;
      s1 = if scoped == null then s0 else elemAt scoped 0;
      # A trailing dotted IPv4 part stands for the last two hextets.
      v4tail = match "(.*:)([0-9]+[.][0-9.]*)" s1;
      v4 = if v4tail == null then null else ipv4Octets (elemAt v4tail 1);
      s =
        if v4tail == null then
          s1
        else if v4 == null then
          null
        else
          elemAt v4tail 0
          + toHex (elemAt v4 0 * 256 + elemAt v4 1)
          + ":"
          + toHex (elemAt v4 2 * 256 + elemAt v4 3);
      sides = u.splitString "::" s;
      groupsOf = side: if side == "" then [ ] else u.splitString ":" side;
      values = map u.fromHex;
    in
    if s == null || match ".*%.*" s0 != null && scoped == null then
      null
    else if length sides == 1 then
      let
        gs = groupsOf s;
      in
      if length gs == 8 && all hextet gs then values gs else null
    else if length sides == 2 then
      let
        l = groupsOf (elemAt sides 0);
        r = groupsOf (elemAt sides 1);
        n = length l + length r;
      in
      if all hextet (l ++ r) && n <= 7 then values l ++ genList (_: 0) (8 - n) ++ values r else null
    else
      null;
in
rec {
  isIPv4 = s: builtins.isString s && ipv4Octets s != null;
  isIPv6 = s: builtins.isString s && match ".*:.*" s != null && ipv6Hextets s != null;
  isIP = s: isIPv4 s || isIPv6 s;

  # ip_network(s) with strict=True: host bits must be zero.
  isCIDR =
    s:
    let
      m = match "([^/]+)(/([0-9]+))?" s;
      addr = elemAt m 0;
      prefix = if m == null || elemAt m 2 == null then null else u.toInt (elemAt m 2);
    in
    if !builtins.isString s || m == null then
      false
    else if isIPv4 addr then
      let
        p = if prefix == null then 32 else prefix;
        o = ipv4Octets addr;
        value = foldl' (acc: x: acc * 256 + x) 0 o;
      in
      p <= 32 && u.mod value (pow2 (32 - p)) == 0
    else if isIPv6 addr && match ".*%.*" addr == null then
      let
        p = if prefix == null then 128 else prefix;
        hs = ipv6Hextets addr;
        ok =
          i:
          let
            lo = 16 * i;
            h = elemAt hs i;
          in
          if p >= lo + 16 then
            true
          else if p <= lo then
            h == 0
          else
            u.mod h (pow2 (lo + 16 - p)) == 0;
      in
      p <= 128 && all ok (genList (i: i) 8)
    else
      false;
}
