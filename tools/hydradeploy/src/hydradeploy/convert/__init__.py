"""Container definitions (NixOS oci-containers, docker-compose) → k3s manifests.

front ends (oci_containers, compose) → model → emit → write / diff, report.
"""
