"""Facts sections: the shell that prints each fact, beside the parser that reads it back.

``base`` holds the machinery (one script of every wanted section, one round
trip; files by base64) and ``system`` the operating system's sections; each
container engine and the registry keep their own sections in their packages.
"""
