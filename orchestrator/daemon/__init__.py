"""The orchestrator daemon (``orchestrator run``): config, duties, control loop, leases.

Start with :mod:`orchestrator.daemon.tasks` (the seed's ``BackgroundTaskManager``) and
:mod:`orchestrator.daemon.config` (``get_enterprise_config()``).
"""
