"""Health Check Scripts and the check engine (built with the health-check issue)."""
