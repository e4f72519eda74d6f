"""Mitigations: one path for every change the console makes to the world.

Every mitigation (roll back, fallback switch, pipeline pause, silence) is an
:class:`Action` and goes the same way, whether a key, the CLI or a runbook step
started it::

    plan()  ->  (a dry run stops here)  ->  confirmation shows the plan
            ->  the target's lock (every console of the store honours it)
            ->  intent, written durably to the audit log (or nothing runs)
            ->  check: the world still matches the plan (else refused, audited)
            ->  apply  ->  read the new state back (another writer: a conflict)
            ->  result, audited  ->  the lock is released
            ->  watch the SLI: recovered or not, audited; if not, the undo plan

Nothing here knows Textual; every front end drives
:class:`console.actions.executor.Executor` through :mod:`console.mitigation`.
"""
