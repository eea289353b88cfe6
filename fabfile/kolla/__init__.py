"""kolla-ansible's files: the line-preserving edit of globals.yml."""
