"""Pure data: the inventory, the run's context, facts by concern, plans, outcomes, and the marks scripts print."""
