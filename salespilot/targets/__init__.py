"""Targets and manager insights: plain modules, no FastAPI (the CLI, routes and flows call them)."""
