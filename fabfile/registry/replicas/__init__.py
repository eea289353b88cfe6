"""Several instances on one shared store, behind one name the nodes resolve through /etc/hosts."""
