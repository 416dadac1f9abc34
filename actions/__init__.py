"""Custom actions for the Rasa server: thin adapters from slots to the bot/ library.

Nothing is loaded at import time: the action server imports this package before it
serves, so the policy, the index and the database are opened on first use
(see actions/resources.py).
"""
