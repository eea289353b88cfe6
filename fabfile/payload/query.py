"""The entry of registry queries: manifests, the catalog, a scan, deletes. Runs on a host (see __init__)."""



from concurrent.futures import ThreadPoolExecutor

from .manifests import catalog, manifest  # dropped on the host: defined above
from .registry_client import WORKERS, Client, UnixClient, host_architecture  # likewise
from .registry_scan import recheck_and_delete, scan, tag_list  # likewise

# The base URL of a registry on a unix socket: the socket is the address, the host is ignored.
UNIX_BASE = "http://localhost"


def answer(request: dict) -> dict:
    """``{"catalog": BASE}``, ``{"manifests": [[BASE, REPOSITORY, TAG or DIGEST(, "platforms")], ...]}``,
    ``{"tags": [[BASE, REPOSITORY], ...]}``, ``{"scan": BASE}`` or
    ``{"prune": {"socket": PATH, "repositories": [...]}}`` (see ``recheck_and_delete``), with the logins and
    CA to ask with."""
    if "prune" in request:
        job = request["prune"]
        return recheck_and_delete(UnixClient(job["socket"]), UNIX_BASE, job["repositories"])
    client = Client(request.get("logins"), request.get("cafile", ""), request.get("limits"))
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        if "scan" in request:
            return scan(client, request["scan"], host_architecture(request))
        if "catalog" in request:
            return catalog(client, request["catalog"])
        if "tags" in request:
            found = pool.map(lambda item: tag_list(client, item[0], item[1]), request["tags"])
            return dict(client.waits.said(), tags=[{"repo": e["name"], "tags": e["names"], "error": e["error"]} for e in found])
        architecture = host_architecture(request)
        # A fourth item asks for the platforms too (what the lock records of an image already held).
        found = pool.map(lambda item: manifest(client, item[0], item[1], item[2], architecture, len(item) > 3), request["manifests"])
        return dict(client.waits.said(), manifests=list(found))
