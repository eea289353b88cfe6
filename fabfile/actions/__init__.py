"""Actions: each task's facts, steps and checks, run by the engine (see ``engine.action``)."""
