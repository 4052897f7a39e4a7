"""Code that runs INSIDE a lab host, copied into every lab closure (lib/hydra-lab/).

Standard library only, and only relative imports between these modules: in a closure
this package is imported as `hydra_lab_guest`, in the tool as `hydradeploy.lab.guest`.
It is the simulated part of the lab: switch-to-configuration and k3s (as k3s.service).
"""
