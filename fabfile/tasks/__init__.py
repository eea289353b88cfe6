"""The tasks: thin, each flags -> an action -> the engine -> the recap (``cli.run_action`` is the skeleton)."""
