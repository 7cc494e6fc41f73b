"""The process runner (not a Django app): starts and stops Redis, the WebUI, the workers and
beat (stack.py), and the supervisor that restarts them and switches releases (supervisor.py)."""
