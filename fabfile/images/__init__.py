"""The images: lists, sync decisions and jobs, archives, pull plans, what a prune deletes, their tables."""
