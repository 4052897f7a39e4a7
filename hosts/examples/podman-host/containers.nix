# The containers of the seeds' podman host (plex and friends) plus the AI containers
# from the hydra seed, as a plain NixOS module fragment: no pkgs, no lib, so it evaluates
# anywhere. `containers.json` beside it is what
#   nix eval --json .#nixosConfigurations.example-podman-host.config.virtualisation.oci-containers.containers
# prints for it (every option of the module, defaults included). Convert it with:
#   hydradeploy convert podman-to-k8s --json hosts/examples/podman-host/containers.json --host hydra-ai
# (--host: the k3s node that will hold the bind-mounted data; the pods are pinned to it)
# Secrets never appear here: they come from environmentFiles (agenix paths), which the
# converter turns into Secret references without reading them.
{ ... }:
{
  virtualisation.oci-containers = {
    backend = "podman";
    containers = {
      plex = {
        image = "docker.io/plexinc/pms-docker:1.41.3.9314-a0bfb8370";
        # host networking: Plex discovery (GDM, DLNA) needs the LAN broadcast domain
        extraOptions = [ "--network=host" ];
        environment = {
          TZ = "Europe/Berlin";
          PLEX_UID = "1000";
          PLEX_GID = "1000";
        };
        environmentFiles = [ "/run/agenix/plex-claim.env" ];
        volumes = [
          "/mnt/data/plex:/config"
          "/mnt/media:/media:ro"
          "/mnt/data/plex-transcode:/transcode"
        ];
        # Intel Quick Sync for transcoding
        devices = [ "/dev/dri:/dev/dri" ];
      };

      sonarr = {
        image = "lscr.io/linuxserver/sonarr:4.0.11";
        ports = [ "8989:8989" ];
        environment = {
          PUID = "1000";
          PGID = "1000";
          TZ = "Europe/Berlin";
        };
        volumes = [
          "/mnt/data/sonarr:/config"
          "/mnt/media:/media"
          "/mnt/downloads:/downloads"
        ];
        dependsOn = [ "prowlarr" ];
      };

      radarr = {
        image = "lscr.io/linuxserver/radarr:5.16.3";
        ports = [ "7878:7878" ];
        environment = {
          PUID = "1000";
          PGID = "1000";
          TZ = "Europe/Berlin";
        };
        volumes = [
          "/mnt/data/radarr:/config"
          "/mnt/media:/media"
          "/mnt/downloads:/downloads"
        ];
        dependsOn = [ "prowlarr" ];
      };

      prowlarr = {
        image = "lscr.io/linuxserver/prowlarr:1.28.2";
        ports = [ "127.0.0.1:9696:9696" ];
        environment = {
          PUID = "1000";
          PGID = "1000";
        };
        volumes = [ "/mnt/data/prowlarr:/config" ];
      };

      transmission = {
        image = "lscr.io/linuxserver/transmission:4.0.6";
        ports = [
          "9091:9091"
          "51413:51413"
          "51413:51413/udp"
        ];
        environmentFiles = [ "/run/agenix/transmission.env" ];
        volumes = [
          "/mnt/data/transmission:/config"
          "/mnt/downloads:/downloads"
        ];
        extraOptions = [
          "--memory=2g"
          "--cpus=2"
          "--health-cmd=curl -fsS http://localhost:9091/transmission/web/ || exit 1"
          "--health-interval=1m"
          "--health-retries=3"
        ];
      };

      open-webui = {
        image = "ghcr.io/open-webui/open-webui:v0.5.20";
        ports = [ "3000:8080" ];
        environment = {
          OLLAMA_BASE_URL = "http://ollama:11434";
          ENABLE_SIGNUP = "false";
        };
        environmentFiles = [ "/run/agenix/open-webui.env" ];
        volumes = [ "open-webui:/app/backend/data" ];
        dependsOn = [ "ollama" ];
        labels = {
          "traefik.enable" = "true";
          "traefik.http.routers.webui.rule" = "Host(`chat.hydra.lan`)";
        };
      };

      comfyui = {
        image = "ghcr.io/ai-dock/comfyui:v2-cuda-12.1.1-base-22.04";
        # 8188 is already published by k8s/apps' ComfyUI (ai-generation)
        ports = [ "8189:8188" ];
        environment = {
          CLI_ARGS = "--listen 0.0.0.0 --port 8188";
        };
        volumes = [
          "/mnt/models:/opt/ComfyUI/models:ro"
          "/mnt/shared/comfyui_output:/opt/ComfyUI/output"
        ];
        # CDI device from hardware.nvidia-container-toolkit
        devices = [ "nvidia.com/gpu=all" ];
        extraOptions = [ "--shm-size=8g" ];
      };

      ollama = {
        image = "docker.io/ollama/ollama:0.5.7";
        ports = [ "11434:11434" ];
        environment = {
          OLLAMA_KEEP_ALIVE = "24h";
          OLLAMA_HOST = "0.0.0.0";
        };
        volumes = [
          "ollama:/root/.ollama"
          "/mnt/models/ollama:/models:ro"
        ];
        extraOptions = [
          "--device=nvidia.com/gpu=all"
          "--health-cmd=ollama list"
          "--health-interval=30s"
          "--health-start-period=20s"
        ];
      };
    };
  };
}
