"""What a job process needs whatever its layer: signals that stop it cleanly (SIGTERM / SIGINT
become `Interrupted`; `deferred()` sections, such as checkpoint and tracking writes, are never
cut in two).

May import errors only, so that every layer above can use it.
"""
