"""nautilus adapters, one package per venue, laid out like nautilus's own adapters.

``adapters/iqfeed`` (DTN IQFeed market data) and ``adapters/sierrachart`` (Sierra Chart execution
over DTC) are built by their own issues; the backtest path needs neither.
"""
