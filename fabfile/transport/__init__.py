"""What reaches hosts: SSH connections, host keys, and the shell that applies plans and fires the handler."""
