{
  description = "hydra: NVIDIA and AMD GPU machines as one k3s cluster on NixOS, from one inventory";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";
    microvm = {
      url = "github:microvm-nix/microvm.nix";
      inputs.nixpkgs.follows = "nixpkgs";
    };
    agenix = {
      url = "github:ryantm/agenix";
      inputs.nixpkgs.follows = "nixpkgs";
      inputs.darwin.follows = "";
      inputs.home-manager.follows = "";
    };
  };

  outputs =
    {
      self,
      nixpkgs,
      microvm,
      agenix,
      ...
    }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});

      inventoryLib = import ./modules/lib/inventory.nix;
      inventory = inventoryLib.load ./hosts/inventory.toml;
      haInventory = inventoryLib.load ./hosts/examples/ha-cluster.toml;

      # modules/*.nix are plain paths, so importing one twice (through two of these
      # wrappers) loads it once.
      nixosModules = {
        common = ./modules/common.nix;
        secrets = {
          imports = [
            agenix.nixosModules.age
            ./modules/secrets.nix
          ];
        };
        k3s = {
          imports = [
            agenix.nixosModules.age
            ./modules/k3s.nix
          ];
        };
        containerd-nvidia = ./modules/containerd-nvidia.nix;
        amdgpu-rocm = ./modules/amdgpu-rocm.nix;
        microvm-workers = {
          imports = [
            agenix.nixosModules.age
            microvm.nixosModules.host
            ./modules/microvm-workers.nix
          ];
        };
        # Everything a cluster host needs; each part switches itself on from the
        # inventory (GPU vendors, microVM guests).
        default = {
          imports = [
            agenix.nixosModules.age
            microvm.nixosModules.host
            ./modules/common.nix
            ./modules/secrets.nix
            ./modules/k3s.nix
            ./modules/containerd-nvidia.nix
            ./modules/amdgpu-rocm.nix
            ./modules/microvm-workers.nix
          ];
        };
      };

      mkClusterHost =
        {
          inventoryFile,
          inv,
          name,
          hostModule,
        }:
        lib.nixosSystem {
          modules = [
            nixosModules.default
            hostModule
            {
              hydra.inventoryFile = inventoryFile;
              hydra.hostName = name;
              nixpkgs.hostPlatform = lib.mkDefault inv.hosts.${name}.system;
            }
          ];
        };

      clusterHosts = lib.mapAttrs (
        name: _:
        mkClusterHost {
          inventoryFile = ./hosts/inventory.toml;
          inv = inventory;
          inherit name;
          hostModule =
            if builtins.pathExists ./hosts/${name}/default.nix then
              ./hosts/${name}
            else
              throw "hydra: host ${name} is in hosts/inventory.toml but hosts/${name}/default.nix does not exist; copy hosts/hydra-compute/ and replace its hardware.nix";
        }
      ) inventory.hosts;

      exampleHaHosts = lib.mapAttrs' (
        name: _:
        lib.nameValuePair "example-ha-${name}" (mkClusterHost {
          inventoryFile = ./hosts/examples/ha-cluster.toml;
          inv = haInventory;
          inherit name;
          hostModule = ./hosts/examples/ha/hardware.nix;
        })
      ) haInventory.hosts;

      nixosConfigurations =
        clusterHosts
        // exampleHaHosts
        // {
          example-podman-host = lib.nixosSystem {
            modules = [ ./hosts/examples/podman-host ];
          };
        };

      # The Kubernetes minor that hydradeploy validates manifests against; the
      # `k3s-version` check fails when the pinned k3s moves away from it.
      kubernetesVersion = import ./modules/lib/kubernetes-version.nix ./tools/hydradeploy/src/hydradeploy/versions.py;

    in
    {
      inherit nixosModules nixosConfigurations;

      # The pure functions (no nixpkgs needed), for other flakes and for inspection:
      #   nix eval .#lib.inventory --apply 'i: (i.load ./hosts/inventory.toml).show'
      lib = {
        inventory = inventoryLib;
        k3sFlags = import ./modules/lib/k3s-flags.nix;
        firewall = import ./modules/lib/firewall.nix;
        manifests = import ./modules/lib/manifests.nix;
        microvms = import ./modules/lib/microvms.nix;
      };

      packages = forAllSystems (pkgs: rec {
        kubernetes-validate = pkgs.callPackage ./modules/packages/kubernetes-validate.nix { };
        hydradeploy = pkgs.callPackage ./modules/packages/hydradeploy.nix {
          inherit kubernetes-validate;
          src = self;
        };
        default = hydradeploy;
      });

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = [
            pkgs.just
            pkgs.nixfmt
            pkgs.nix-tree
            pkgs.kubectl
            pkgs.kubernetes-helm
            pkgs.age
            agenix.packages.${pkgs.stdenv.hostPlatform.system}.default
            pkgs.openssh
            pkgs.iproute2
            (pkgs.python3.withPackages (ps: [
              ps.click
              ps.rich
              ps.pyyaml
              ps.fabric
              ps.deepdiff
              ps.jinja2
              ps.pytest
              ps.hypothesis
              ps.mypy
              ps.types-pyyaml
              self.packages.${pkgs.stdenv.hostPlatform.system}.kubernetes-validate
            ]))
            pkgs.ruff
          ];
          shellHook = ''
            export HYDRA_ROOT=$PWD
            export PYTHONPATH=$PWD/tools/hydradeploy/src''${PYTHONPATH:+:$PYTHONPATH}
          '';
        };
      });

      formatter = forAllSystems (pkgs: pkgs.nixfmt-tree);

      checks = forAllSystems (
        pkgs:
        let
          system = pkgs.stdenv.hostPlatform.system;
          # Evaluating a configuration's toplevel derivation is the check: it forces every
          # option, assertion and module of the host without building the system.
          evalCheck =
            name: cfg:
            pkgs.runCommand "eval-${name}" { } ''
              echo ${builtins.unsafeDiscardStringContext cfg.config.system.build.toplevel.drvPath} > $out
            '';
          hostChecks = lib.mapAttrs' (name: cfg: lib.nameValuePair "nixos-${name}" (evalCheck name cfg)) (
            lib.filterAttrs (_: cfg: cfg.pkgs.stdenv.hostPlatform.system == system) nixosConfigurations
          );
        in
        hostChecks
        // {
          # Builds the tool and runs its non-lab tests (see modules/packages/hydradeploy.nix).
          hydradeploy = self.packages.${system}.hydradeploy;

          # Every manifest under k8s/ against the schemas of the Kubernetes version k3s runs.
          manifests =
            pkgs.runCommand "validate-manifests"
              {
                nativeBuildInputs = [
                  (pkgs.python3.withPackages (_: [ self.packages.${system}.kubernetes-validate ]))
                ];
              }
              ''
                cd ${self}
                files=$(find k8s -name '*.yaml' -o -name '*.yml' | sort)
                if [ -n "$files" ]; then
                  kubernetes-validate --strict --quiet --kubernetes-version ${kubernetesVersion}.0 $files
                fi
                touch $out
              '';

          # The pinned k3s runs the Kubernetes minor that manifests are validated against.
          k3s-version =
            let
              k3sMinor = lib.versions.majorMinor pkgs.k3s.version;
            in
            assert lib.assertMsg (k3sMinor == kubernetesVersion)
              "pkgs.k3s is ${pkgs.k3s.version} but tools/hydradeploy/src/hydradeploy/versions.py says ${kubernetesVersion}: update KUBERNETES_VERSION";
            pkgs.runCommand "k3s-version" { } "echo ${pkgs.k3s.version} > $out";

          formatting = pkgs.runCommand "nixfmt-check" { nativeBuildInputs = [ pkgs.nixfmt ]; } ''
            cd ${self}
            find . -name '*.nix' -not -path './.git/*' -print0 | sort -z | xargs -0 nixfmt --check
            touch $out
          '';
        }
      );
    };
}
