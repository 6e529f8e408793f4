"""Targets for managers: forecast, base/stretch targets, allocation, activity plan, health, insights.

Plain modules, no FastAPI: the CLI, the API routes, the flows and the backtest call these functions.
"""
