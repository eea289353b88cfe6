"""kolla-registry: a Docker registry on the deployment host, trusted by every Kolla node.

``fab -H deploy1 deploy-host`` runs the documented steps on the deployment host;
``fab configure-targets`` points every target node's Docker at the registry.
Hosts come from ``hosts.yaml`` (or ``$KOLLA_REGISTRY_HOSTS``).
"""

from invoke import Collection

from . import deploy, targets

ns = Collection(*deploy.STEP_TASKS, deploy.verify_registry, deploy.deploy_host, targets.configure_targets)
ns.configure({"kolla_registry": {"parallel": 10}})
