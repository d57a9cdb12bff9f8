"""Device profiles, one module per family; each module exports PROFILES (a tuple of TargetProfile)."""

FAMILIES: tuple = ()
