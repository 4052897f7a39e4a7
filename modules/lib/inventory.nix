# The cluster inventory (hosts/inventory.toml): validation and the derived view.
#
# The Nix twin of tools/hydradeploy/src/hydradeploy/inventory.py: `validate` returns the
# same { code; path; } issues as Python's validate() (tests/nix compares them on good and
# bad inventories), `build` fills the same defaults and derives the same nodes, labels,
# tags and GPU resources as Inventory.expected_nodes() / node_labels() / Host.all_tags().
#
#   let inv = import ./inventory.nix; in inv.load ../../hosts/inventory.toml
#
# `load` throws one readable error listing every issue; `check` returns them.
let
  u = import ./util.nix;
  net = import ./net.nix;
  kube = import ./kube-names.nix;
  inherit (builtins)
    attrNames
    elem
    filter
    hasAttr
    isAttrs
    isBool
    isInt
    isList
    isString
    length
    concatStringsSep
    ;

  # Keys, required keys, enums and reserved labels: written once, in the data file that
  # hydradeploy reads too.
  schema = builtins.fromTOML (builtins.readFile ../../tools/hydradeploy/src/hydradeploy/inventory_schema.toml);
  keys = schema.tables;
  roles = schema.enums.role;
  gpuVendors = schema.enums.gpu_vendor;
  flannelBackends = schema.enums.flannel_backend;
  disableable = schema.enums.disable;
  gpuResource = schema.gpu_resource;

  issue = code: path: message: { inherit code path message; };
  j = u.join;

  # ------------------------------------------------------------------ generic checks

  # Unknown and missing keys of a table; wrong-type when it is not a table.
  tableIssues =
    value: path: spec:
    if !isAttrs value then
      [ (issue "wrong-type" path "must be a table") ]
    else
      map (k: issue "unknown-key" (j [ path k ]) "unknown key '${k}'") (
        filter (k: !elem k spec.allowed) (attrNames value)
      )
      ++ map (k: issue "missing-field" (j [ path k ]) "missing required key '${k}'") (
        filter (k: !hasAttr k value) spec.required
      );

  kinds = {
    str = isString;
    int = isInt;
    bool = isBool;
    list = isList;
    table = isAttrs;
  };

  # [ issue ] when t.${key} exists and is not of `kind`.
  typeIssues =
    t: key: path: kind: what:
    u.optional (hasAttr key t && !kinds.${kind} t.${key}) (
      issue "wrong-type" (j [ path key ]) "must be ${what}"
    );
  typedOk = t: key: kind: hasAttr key t && kinds.${kind} t.${key};

  stringListIssues =
    t: key: path:
    typeIssues t key path "list" "a list of strings"
    ++ u.optionals (typedOk t key "list") (
      u.concatMap (
        x: u.optional (!isString x.value) (issue "wrong-type" (j [ path key (toString x.index) ]) "must be a string")
      ) (u.imap0 (index: value: { inherit index value; }) t.${key})
    );
  stringList = t: key: if typedOk t key "list" then filter isString t.${key} else [ ];
  indexed = list: u.imap0 (index: value: { inherit index value; }) list;

  addressIssues =
    t: path:
    typeIssues t "address" path "str" "an IP address string"
    ++ u.optional (typedOk t "address" "str" && !net.isIP t.address) (
      issue "bad-value" (j [ path "address" ]) "'${t.address}' is not an IP address"
    );
  validAddress = t: if typedOk t "address" "str" && net.isIP t.address then t.address else null;

  # The schema entry that reserves a label key for k3s or the kubelet, or null.
  reservedLabel =
    key:
    let
      hits = filter (r: (r ? key && r.key == key) || (r ? prefix && u.hasPrefix r.prefix key)) schema.reserved_labels;
    in
    if hits == [ ] then null else builtins.head hits;

  labelIssues =
    t: path:
    typeIssues t "labels" path "table" "a table of strings"
    ++ u.optionals (typedOk t "labels" "table") (
      u.concatMap (
        key:
        let
          value = t.labels.${key};
          err = kube.nodeLabelError key value;
          reserved = reservedLabel key;
        in
        if !isString value then
          [ (issue "wrong-type" (j [ path "labels" key ]) "label values must be strings") ]
        else if reserved != null then
          [
            (issue "reserved-label" (j [ path "labels" key ]) "label '${key}' is not the inventory's to set: ${reserved.owner}")
          ]
        else
          u.optional (err != null) (issue "bad-label" (j [ path "labels" key ]) err)
      ) (attrNames t.labels)
    );

  # A name or address to reach the host over SSH: a DNS name or an IP address, nothing
  # a shell or ssh would read as more than one word or an option.
  targetHostIssues =
    t: path:
    typeIssues t "target_host" path "str" "a host name or IP address"
    ++ u.optional (typedOk t "target_host" "str" && !isTargetHost t.target_host) (
      issue "bad-value" (j [ path "target_host" ]) "'${t.target_host}' is not a DNS name or IP address"
    );
  isTargetHost =
    s:
    net.isIP s
    || (
      builtins.stringLength s <= 253
      && u.matches "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?([.][A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*[.]?" s
    );

  # The schema entry that reserves a taint key for a Kubernetes or k3s controller, or null.
  reservedTaint =
    key:
    let
      hits = filter (r: u.hasPrefix r.prefix key) schema.reserved_taints;
    in
    if hits == [ ] then null else builtins.head hits;

  taintIssues =
    t: path:
    let
      strings = filter (x: isString x.value) (if typedOk t "taints" "list" then indexed t.taints else [ ]);
      parsed = map (x: x // { taint = kube.parseTaint x.value; }) strings;
      valid = filter (x: x.taint.error == null && reservedTaint x.taint.key == null) parsed;
      # the API server refuses a node with two taints of the same key and effect
      firstOf = x: builtins.head (filter (y: y.taint.key == x.taint.key && y.taint.effect == x.taint.effect) valid);
      at = x: j [ path "taints" (toString x.index) ];
    in
    stringListIssues t "taints" path
    ++ u.concatMap (
      x:
      if x.taint.error != null then
        [ (issue "bad-taint" (at x) x.taint.error) ]
      else if reservedTaint x.taint.key != null then
        [
          (issue "reserved-taint" (at x) "taint key '${x.taint.key}' is not the inventory's to set: ${(reservedTaint x.taint.key).owner}")
        ]
      else
        u.optional ((firstOf x).index != x.index) (
          issue "bad-taint" (at x) "taint '${x.value}' repeats key '${x.taint.key}' with effect ${x.taint.effect} (taints.${toString (firstOf x).index})"
        )
    ) parsed;

  positiveIntIssues =
    t: key: path:
    typeIssues t key path "int" "an integer"
    ++ u.optional (typedOk t key "int" && t.${key} < 1) (issue "bad-value" (j [ path key ]) "must be at least 1");

  sshIssues =
    data: path:
    let
      t = data;
    in
    tableIssues data path keys.ssh
    ++ u.optionals (isAttrs data) (
      typeIssues t "user" path "str" "a string"
      ++ typeIssues t "port" path "int" "an integer"
      ++ u.optional (typedOk t "port" "int" && !(t.port > 0 && t.port < 65536)) (
        issue "bad-value" (j [ path "port" ]) "must be a TCP port (1-65535)"
      )
      ++ u.concatMap (k: typeIssues t k path "str" "a string") [
        "key"
        "jump"
        "known_hosts"
        "host_key"
      ]
      ++ typeIssues t "sudo" path "bool" "true or false"
    );

  # ------------------------------------------------------------------ sections

  clusterIssues =
    cluster:
    let
      p = "cluster";
      t = cluster;
    in
    tableIssues cluster p keys.cluster
    ++ u.optionals (isAttrs cluster) (
      typeIssues t "name" p "str" "a string"
      ++ u.optional (typedOk t "name" "str" && !kube.isDns1123Label t.name) (
        issue "bad-name" "cluster.name" "'${t.name}' is not a DNS-1123 label"
      )
      ++ typeIssues t "api_endpoint" p "str" "a URL string"
      ++ u.optional (
        typedOk t "api_endpoint" "str" && !u.matches "https://[^/[:space:]]+:[0-9]+" t.api_endpoint
      ) (issue "bad-value" "cluster.api_endpoint" "must look like https://ADDRESS:6443")
      ++ u.concatMap (
        key:
        typeIssues t key p "str" "a CIDR string"
        ++ u.optional (typedOk t key "str" && !net.isCIDR t.${key}) (
          issue "bad-value" (j [ p key ]) "'${t.${key}}' is not a CIDR"
        )
      ) [
        "cluster_cidr"
        "service_cidr"
      ]
      ++ typeIssues t "flannel_backend" p "str" "a string"
      ++ u.optional (typedOk t "flannel_backend" "str" && !elem t.flannel_backend flannelBackends) (
        issue "bad-value" "cluster.flannel_backend" "must be one of ${concatStringsSep ", " flannelBackends}"
      )
      ++ stringListIssues t "disable" p
      ++ u.concatMap (
        x:
        u.optional (isString x.value && !elem x.value disableable) (
          issue "bad-value" "cluster.disable.${toString x.index}" "'${x.value}' is not a k3s component that can be disabled"
        )
      ) (if typedOk t "disable" "list" then indexed t.disable else [ ])
      ++ typeIssues t "etcd_snapshot_schedule" p "str" "a cron string"
      ++ positiveIntIssues t "etcd_snapshot_retention" p
      ++ typeIssues t "admin_user" p "str" "a string"
      ++ u.optional (typedOk t "admin_user" "str" && !u.matches "[a-z_][a-z0-9_-]*" t.admin_user) (
        issue "bad-value" "cluster.admin_user" "is not a valid user name"
      )
      ++ stringListIssues t "admin_keys" p
    );

  storageIssues =
    name: s:
    let
      p = "storage.${name}";
    in
    tableIssues s p keys.storage
    ++ u.optionals (isAttrs s) (
      u.optional (!kube.isDns1123Label name) (issue "bad-name" p "'${name}' is not a DNS-1123 label")
      ++ addressIssues s p
      ++ stringListIssues s "exports" p
    );

  gpuIssues =
    path: g:
    tableIssues g path keys.gpu
    ++ u.optionals (isAttrs g) (
      typeIssues g "vendor" path "str" "a string"
      ++ u.optional (typedOk g "vendor" "str" && !elem g.vendor gpuVendors) (
        issue "bad-value" (j [ path "vendor" ]) "GPU vendor '${g.vendor}' must be nvidia or amd"
      )
      ++ typeIssues g "model" path "str" "a string"
      ++ positiveIntIssues g "count" path
      ++ positiveIntIssues g "vram_gb" path
    );

  nfsIssues =
    storageExports: path: n:
    tableIssues n path keys.nfs
    ++ u.optionals (isAttrs n) (
      typeIssues n "read_only" path "bool" "true or false"
      ++ typeIssues n "mountpoint" path "str" "an absolute path"
      ++ u.optional (typedOk n "mountpoint" "str" && !u.hasPrefix "/" n.mountpoint) (
        issue "bad-value" (j [ path "mountpoint" ]) "must be an absolute path"
      )
      ++ typeIssues n "server" path "str" "a storage name"
      ++ typeIssues n "export" path "str" "a path"
      ++ u.optionals (typedOk n "server" "str" && typedOk n "export" "str") (
        if !hasAttr n.server storageExports then
          [ (issue "unknown-storage" (j [ path "server" ]) "no [storage.${n.server}] in the inventory") ]
        else
          u.optional (!elem n.export storageExports.${n.server}) (
            issue "unknown-export" (j [ path "export" ]) "${n.server} does not export ${n.export}"
          )
      )
    );

  microvmIssues =
    path: v:
    tableIssues v path keys.microvm
    ++ u.optionals (isAttrs v) (
      typeIssues v "name" path "str" "a string"
      ++ u.optional (typedOk v "name" "str" && !kube.isDns1123Label v.name) (
        issue "bad-name" (j [ path "name" ]) "'${v.name}' is not a DNS-1123 label"
      )
      ++ addressIssues v path
      ++ positiveIntIssues v "vcpu" path
      ++ positiveIntIssues v "memory_mb" path
      ++ labelIssues v path
      ++ taintIssues v path
    );

  hostIssues =
    storageExports: name: h:
    let
      p = "hosts.${name}";
    in
    tableIssues h p keys.host
    ++ u.optionals (isAttrs h) (
      u.optional (!kube.isDns1123Label name) (
        issue "bad-name" p "host name '${name}' is not a DNS-1123 label (it becomes the node name)"
      )
      ++ addressIssues h p
      ++ targetHostIssues h p
      ++ typeIssues h "role" p "str" "a string"
      ++ u.optional (typedOk h "role" "str" && !elem h.role roles) (
        issue "bad-value" (j [ p "role" ]) "role '${h.role}' must be server or agent"
      )
      ++ typeIssues h "cluster_init" p "bool" "true or false"
      ++ u.optional (typedOk h "cluster_init" "bool" && h.cluster_init && (h.role or null) != "server") (
        issue "cluster-init-not-server" (j [ p "cluster_init" ]) "only a server can initialise the cluster"
      )
      ++ typeIssues h "system" p "str" "a system string such as x86_64-linux"
      ++ stringListIssues h "tags" p
      ++ u.concatMap (
        x:
        u.optional (isString x.value && !u.matches "[a-z0-9][a-z0-9-]*" x.value) (
          issue "bad-value" (j [ p "tags" (toString x.index) ]) "tag '${x.value}' must be lowercase letters, digits and dashes"
        )
      ) (if typedOk h "tags" "list" then indexed h.tags else [ ])
      ++ labelIssues h p
      ++ taintIssues h p
      ++ typeIssues h "rocm_gfx_version" p "str" "a version string"
      ++ u.optional (
        typedOk h "rocm_gfx_version" "str" && !u.matches "[0-9]+[.][0-9]+[.][0-9]+" h.rocm_gfx_version
      ) (issue "bad-value" (j [ p "rocm_gfx_version" ]) "must look like 11.0.0 (HSA_OVERRIDE_GFX_VERSION)")
      ++ u.optionals (hasAttr "ssh" h) (sshIssues h.ssh (j [ p "ssh" ]))
      ++ typeIssues h "gpus" p "list" "a list of tables"
      ++ u.optionals (typedOk h "gpus" "list") (
        u.concatMap (x: gpuIssues (j [ p "gpus" (toString x.index) ]) x.value) (indexed h.gpus)
      )
      ++ typeIssues h "nfs" p "list" "a list of tables"
      ++ u.optionals (typedOk h "nfs" "list") (
        u.concatMap (x: nfsIssues storageExports (j [ p "nfs" (toString x.index) ]) x.value) (indexed h.nfs)
        ++ duplicateIssues "duplicate-mountpoint" "mountpoint" (
          map (x: {
            value = x.value.mountpoint;
            path = j [ p "nfs" (toString x.index) "mountpoint" ];
          }) (filter (x: isAttrs x.value && typedOk x.value "mountpoint" "str") (indexed h.nfs))
        )
      )
      ++ typeIssues h "microvms" p "list" "a list of tables"
      ++ u.optionals (typedOk h "microvms" "list") (
        u.concatMap (x: microvmIssues (j [ p "microvms" (toString x.index) ]) x.value) (indexed h.microvms)
      )
    );

  # Every value claimed twice (names, addresses) is reported at each claimant's path,
  # so the verdict does not depend on the order of tables (Nix sorts attribute names).
  duplicateIssues =
    code: what: claims:
    let
      groups = u.groupBy (c: c.value) claims;
    in
    u.concatMap (
      value:
      let
        cs = groups.${value};
      in
      u.optionals (length cs > 1) (
        map (
          c:
          issue code c.path "${what} '${value}' is used ${toString (length cs)} times (${
            concatStringsSep ", " (map (o: o.path) cs)
          })"
        ) cs
      )
    ) (attrNames groups);

  validate =
    data:
    let
      top = data;
      topIssues = tableIssues data "" keys.top;
      cluster = top.cluster or { };
      storage = top.storage or { };
      storageOk = isAttrs storage;
      storageTables = if storageOk then u.filterAttrs (_: isAttrs) storage else { };
      storageExports = builtins.mapAttrs (_: s: stringList s "exports") storageTables;
      hosts = top.hosts or { };
      hostsOk = isAttrs hosts;
      hostTables = if hostsOk then u.filterAttrs (_: isAttrs) hosts else { };
      vmsOf =
        h: if typedOk h "microvms" "list" then filter (x: isAttrs x.value) (indexed h.microvms) else [ ];

      nameClaims =
        map (n: {
          value = n;
          path = "storage.${n}";
        }) (attrNames storageTables)
        ++ map (n: {
          value = n;
          path = "hosts.${n}";
        }) (attrNames hostTables)
        ++ u.concatMap (
          n:
          map (x: {
            value = x.value.name;
            path = "hosts.${n}.microvms.${toString x.index}.name";
          }) (filter (x: typedOk x.value "name" "str") (vmsOf hostTables.${n}))
        ) (attrNames hostTables);

      addressClaims =
        u.concatMap (
          n:
          u.optional (validAddress storageTables.${n} != null) {
            value = storageTables.${n}.address;
            path = "storage.${n}.address";
          }
        ) (attrNames storageTables)
        ++ u.concatMap (
          n:
          let
            h = hostTables.${n};
          in
          u.optional (validAddress h != null) {
            value = h.address;
            path = "hosts.${n}.address";
          }
          ++ u.concatMap (
            x:
            u.optional (validAddress x.value != null) {
              value = x.value.address;
              path = "hosts.${n}.microvms.${toString x.index}.address";
            }
          ) (vmsOf h)
        ) (attrNames hostTables);

      roleOf = n: if typedOk hostTables.${n} "role" "str" && elem hostTables.${n}.role roles then hostTables.${n}.role else null;
      withRole = filter (n: roleOf n != null) (attrNames hostTables);
      clusterInits = filter (
        n: typedOk hostTables.${n} "cluster_init" "bool" && hostTables.${n}.cluster_init
      ) (attrNames hostTables);
      hasServer = builtins.any (n: roleOf n == "server") withRole;
    in
    if !isAttrs data then
      topIssues
    else
      topIssues
      ++ clusterIssues cluster
      ++ u.optionals (hasAttr "ssh" top) (sshIssues top.ssh "ssh")
      ++ u.optional (!storageOk) (issue "wrong-type" "storage" "must be a table")
      ++ u.concatMap (n: storageIssues n storage.${n}) (if storageOk then attrNames storage else [ ])
      ++ (
        if !hostsOk then
          [ (issue "wrong-type" "hosts" "must be a table") ]
        else
          u.optional (hosts == { } && hasAttr "hosts" top) (issue "no-hosts" "hosts" "the inventory declares no hosts")
          ++ u.concatMap (n: hostIssues storageExports n hosts.${n}) (attrNames hosts)
          ++ u.optionals (hosts != { }) (
            u.optional (clusterInits == [ ]) (
              issue "no-cluster-init" "hosts" "no server has cluster_init = true (exactly one must)"
            )
            ++ u.optional (length clusterInits > 1) (
              issue "many-cluster-init" "hosts" "${toString (length clusterInits)} servers have cluster_init = true (${concatStringsSep ", " clusterInits}); exactly one must"
            )
            ++ u.optionals (!hasServer) (
              map (n: issue "agent-without-server" "hosts.${n}" "agent has no server to join (no host has role = \"server\")") (
                filter (n: roleOf n == "agent") withRole
              )
            )
          )
      )
      ++ duplicateIssues "duplicate-name" "name" nameClaims
      ++ duplicateIssues "duplicate-address" "address" addressClaims;

  # ------------------------------------------------------------------ the derived view

  urlHost = a: if builtins.match ".*:.*" a != null then "[${a}]" else a;

  build =
    data:
    let
      cl = data.cluster;
      sshDefaults = data.ssh or { };
      hostNames = attrNames data.hosts;
      init = builtins.head (filter (n: data.hosts.${n}.cluster_init or false) hostNames);
      cluster = {
        name = cl.name;
        api_endpoint = cl.api_endpoint or "https://${urlHost data.hosts.${init}.address}:6443";
        cluster_cidr = cl.cluster_cidr or "10.42.0.0/16";
        service_cidr = cl.service_cidr or "10.43.0.0/16";
        flannel_backend = cl.flannel_backend or "vxlan";
        disable = cl.disable or [ ];
        etcd_snapshot_schedule = cl.etcd_snapshot_schedule or "0 */6 * * *";
        etcd_snapshot_retention = cl.etcd_snapshot_retention or 12;
        admin_user = cl.admin_user or "hydra";
        admin_keys = cl.admin_keys or [ ];
        cluster_init = init;
        # k3s runs embedded etcd when a server was started with --cluster-init.
        embedded_etcd = true;
      };
      mkHost =
        name:
        let
          h = data.hosts.${name};
          s = sshDefaults // (h.ssh or { });
          gpus = map (g: {
            inherit (g) vendor model count;
            vram_gb = g.vram_gb or null;
            resource = gpuResource.${g.vendor};
          }) (h.gpus or [ ]);
          vendors = u.sortStrings (u.unique (map (g: g.vendor) gpus));
          microvms = map (v: {
            inherit (v) name address;
            vcpu = v.vcpu or 2;
            memory_mb = v.memory_mb or 4096;
            labels = v.labels or { };
            taints = v.taints or [ ];
          }) (h.microvms or [ ]);
          role = h.role;
          clusterInit = h.cluster_init or false;
          tags = h.tags or [ ];
          gpuResources = builtins.foldl' (
            acc: g: acc // { ${g.resource} = (acc.${g.resource} or 0) + g.count; }
          ) { } gpus;
          derivedLabels = u.optionalAttrs (gpus != [ ]) {
            "hydra.io/gpu-vendor" = if length vendors == 1 then builtins.head vendors else "mixed";
            "hydra.io/gpu-count" = toString (u.sum (map (g: g.count) gpus));
          };
        in
        {
          inherit
            name
            role
            gpus
            microvms
            tags
            ;
          address = h.address;
          # SSH reaches the host here; k3s still uses `address` (the node IP).
          target_host = h.target_host or null;
          cluster_init = clusterInit;
          is_server = role == "server";
          system = h.system or "x86_64-linux";
          labels = h.labels or { };
          taints = h.taints or [ ];
          nfs = map (n: {
            inherit (n) server export mountpoint;
            read_only = n.read_only or false;
            server_address = data.storage.${n.server}.address;
          }) (h.nfs or [ ]);
          rocm_gfx_version = h.rocm_gfx_version or null;
          ssh = {
            user = s.user or "root";
            port = s.port or 22;
            key = s.key or null;
            jump = s.jump or null;
            sudo = s.sudo or false;
            known_hosts = s.known_hosts or null;
            host_key = s.host_key or null;
          };
          gpu_resources = gpuResources;
          gpu_vendors = vendors;
          # Inventory labels win over the derived ones.
          node_labels = derivedLabels // (h.labels or { });
          # Inventory tags plus implicit ones: the role, `gpu`, each GPU vendor, ...
          all_tags = u.unique (
            tags
            ++ [ role ]
            ++ u.optionals (gpus != [ ]) ([ "gpu" ] ++ vendors)
            ++ u.optional clusterInit "cluster-init"
            ++ u.optional (microvms != [ ]) "microvm-host"
          );
        };
      hosts = builtins.listToAttrs (
        map (n: {
          name = n;
          value = mkHost n;
        }) hostNames
      );
      servers = filter (n: hosts.${n}.is_server) hostNames;
      agents = filter (n: !hosts.${n}.is_server) hostNames;
      # Every k3s node: the hosts and their microVM guests.
      nodes =
        builtins.mapAttrs (n: h: {
          host = n;
          inherit (h) role address;
          labels = h.node_labels;
          taints = u.sortStrings h.taints;
          gpus = h.gpu_resources;
        }) hosts
        // builtins.listToAttrs (
          u.concatMap (
            n:
            map (v: {
              name = v.name;
              value = {
                host = n;
                role = "agent";
                inherit (v) address;
                labels = v.labels // {
                  "hydra.io/microvm-host" = n;
                };
                taints = u.sortStrings v.taints;
                gpus = { };
              };
            }) hosts.${n}.microvms
          ) hostNames
        );
    in
    {
      inherit
        cluster
        hosts
        servers
        agents
        nodes
        ;
      storage = builtins.mapAttrs (n: s: {
        name = n;
        inherit (s) address exports;
      }) (data.storage or { });
      server_addresses = map (n: hosts.${n}.address) servers;
      # What `hydradeploy inventory show --output json` prints.
      show = {
        cluster = {
          inherit (cluster) name api_endpoint embedded_etcd cluster_init;
        };
        hosts = builtins.mapAttrs (n: h: {
          inherit (h) address role;
          tags = h.all_tags;
        }) hosts;
        inherit nodes;
      };
    };

  formatIssues =
    file: issues:
    concatStringsSep "\n" (map (i: "  ${file}: ${i.path}: ${i.message} [${i.code}]") issues);
in
{
  inherit
    validate
    build
    gpuResource
    flannelBackends
    schema
    ;

  # { ok; issues; inventory (null when not ok); } for parsed data.
  check =
    data:
    let
      issues = validate data;
    in
    {
      ok = issues == [ ];
      inherit issues;
      inventory = if issues == [ ] then build data else null;
    };

  # Read, validate and build; any problem aborts evaluation with every issue listed.
  load =
    file:
    let
      data = builtins.fromTOML (builtins.readFile file);
      issues = validate data;
    in
    if issues == [ ] then
      build data
    else
      throw "hydra: invalid inventory ${toString file}:\n${formatIssues (toString file) issues}\n(run `hydradeploy inventory check` for the same list)";
}
