"""Incidents: the incident book (its states, kept in the store), the live work that
opens them and measures them, which incident an action is filed under, and the
timeline."""
