"""What runs a treatment session, without Qt: the live rig (bus, safety monitor, drivers, recorder wired once), the
safety monitor and its checked reset, the session state machine and its outcome, the visit service the window and
the headless runner share, the store journal and crash recovery, the scenario format and the headless runner, and
the audit that holds a recording against today's safety monitor.

Nothing is re-exported here: import from the module (`workstation.session.safety`), so importing one part never
loads the others.
"""
