"""Small example models that ship with hwopt (generated, so the repository carries no binaries)."""
