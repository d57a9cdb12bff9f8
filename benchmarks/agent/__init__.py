"""The benchmark agent: `optimize agent` on a device measures artifacts that a host uploads to it.

    protocol   the HTTP paths, headers, defaults and the bench options as they travel
    transfer   an artifact folder packed into a tar.gz upload, and unpacked safely on the agent
    server     the agent: token check, upload cap, one benchmark at a time, errors as JSON
    client     `remote_bench(artifact, url, token)`: what `optimize bench --remote` calls
"""
