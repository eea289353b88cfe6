"""The engine: runs actions on hosts (one execution model): access, facts, converge, handlers, checks, recap."""
