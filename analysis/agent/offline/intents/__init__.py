"""The analyst's intents: ``INTENTS`` (the table, ``table.py``) and what they share (``base.py``)."""

from analysis.agent.offline.intents.base import Intent, Plan, features, fmt
from analysis.agent.offline.intents.table import INTENTS, intent_for

__all__ = ["INTENTS", "Intent", "Plan", "features", "fmt", "intent_for"]
