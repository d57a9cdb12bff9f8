"""Device profiles, one module per family; each module exports PROFILES (a tuple of TargetProfile).

`all_targets()` lists them in this order, after the host CPU: generic CPUs first, then accelerators, then the
edge devices.
"""

from optimizer.targets.families import edge, intel, jetson, nvidia, x86

FAMILIES: tuple = (x86.PROFILES, intel.PROFILES, nvidia.PROFILES, jetson.PROFILES, edge.PROFILES)
