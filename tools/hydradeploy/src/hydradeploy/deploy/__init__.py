"""The deploy engine: NixOS generations over SSH in cluster order, with magic rollback
and k3s join checks. The command line is in `cli`; the flow in `engine`."""
