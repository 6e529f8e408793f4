"""Targets for managers: forecast, base/stretch targets, allocation, activity plan, health.

Plain modules, no FastAPI: the CLI, the API routes and the backtest call these functions.
"""
