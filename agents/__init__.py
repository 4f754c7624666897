"""Learning agents for hrm-gym: the HRM-ACT-v1 model (``agents.hrm``) and what trains it.

Kept import-light on purpose: ``import agents`` must not pull in torch, so that tools which only
need a submodule (or only list the package) stay fast.
"""
