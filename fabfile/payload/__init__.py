"""Programs run in another Python than this tool's, e.g. the operator's kolla-ansible virtualenv."""
