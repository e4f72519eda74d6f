"""The lab's error: something the user must act on, as the lab's control plane
(:mod:`lab.control`, :mod:`lab.launch`, :mod:`lab.readiness`) raises it."""

from __future__ import annotations


class LabError(Exception):
    """Something the user must act on; the message says what."""
