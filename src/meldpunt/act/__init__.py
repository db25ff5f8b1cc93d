"""Locate and act (#10): from an item found illegal to the content gone, with every step on record.

The services of the step after triage, each in its own module (one line each):

- ``context``   what the act services need (settings, database, clock, audit log, the fetcher)
- ``timeline``  the action timeline: one ``action_events`` row per thing that happened
- ``ticks``     the periodic pass every worker makes (due work -> durable jobs) and the job kinds
- ``locating``  the ``locate`` job: where an item's URL is hosted (``meldpunt.locate``), on record
- ``contacts``  abuse contacts and routing rules as data, edited by seniors (audited)
- ``routing``   takedowns for items found illegal; which route each takes, explained
- ``notices``   notices batched per abuse contact, reminders, escalation, providers' answers
- ``outbox``    every message that leaves meldpunt: e-mail and webhook channels, the ``send`` job
- ``recheck``   re-checking acted-on URLs until gone; removal, moves, time to removal
- ``removals``  the removals page's figures: time to removal per item and per provider
- ``alerts``    urgent cases: on-call alerts, acknowledgement, escalation
- ``cybertip``  the CyberTipline-style XML export of items found illegal, audited (#11)

Time comes from the injected clock (``Services.clock``): due times are compared with
``clock.now()`` in the ticks, so a test moves a ``ManualClock`` through a week of 24-hour cycles
in seconds. Every tick may run in several workers at once: each change is a conditional UPDATE
on the state it moves from, and each job and outbox message has a unique key.
"""
