"""The entry of registry queries: manifests, the catalog, a scan, deletes. Runs on a host (see __init__)."""



from concurrent.futures import ThreadPoolExecutor

from .manifests import catalog, manifest  # dropped on the host: defined above
from .registry_client import WORKERS, Client, host_architecture  # likewise
from .registry_scan import delete, scan  # likewise


def answer(request: dict) -> dict:
    """``{"catalog": BASE}``, ``{"manifests": [[BASE, REPOSITORY, TAG], ...]}``, ``{"scan": BASE}`` or
    ``{"delete": [[BASE, REPOSITORY, DIGEST], ...]}``, with the logins and CA to ask with."""
    client = Client(request.get("logins"), request.get("cafile", ""))
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        if "delete" in request:
            return {"deleted": list(pool.map(lambda item: delete(client, *item), request["delete"]))}
        if "scan" in request:
            return scan(client, request["scan"], host_architecture(request))
        if "catalog" in request:
            return catalog(client, request["catalog"])
        architecture = host_architecture(request)
        found = pool.map(lambda item: manifest(client, item[0], item[1], item[2], architecture), request["manifests"])
        return {"manifests": list(found)}
