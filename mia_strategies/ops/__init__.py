"""Operations: alerts to people (Telegram, email, SMS, log), market memory, voice, shared settings.

These modules run beside the trading kernel, never inside its hot path: alerts are delivered by
worker threads, the market memory is a small SQLite file written once per bar, and the voice
dialogue talks to a node through its run folder.
"""
