"""Managers' domain logic: forecast, base/stretch targets, allocation, activity plans, process
health, the targets backtest and the insights (gap attribution, channels).

Plain modules, no FastAPI: the CLI, the API routes, the flows and the backtest call these functions.
"""
