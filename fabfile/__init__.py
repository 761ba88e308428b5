"""Fabric tasks for the ictq workers: ``fab [-H host1,host2] queue.TASK`` (docs/fabric.md).

Hosts come from ``-H``, or else from the Ansible inventory's ``workers`` group
(``queue.inventory``; default: ``inventory`` at the project root, where the deploy keeps it).
Commands run over SSH through ``sudo``: ``supervisorctl`` as root, ``ictq`` as the app user
in the app dir. ``fab --list`` shows the tasks; ``fab --help queue.TASK`` their options.
"""

from __future__ import annotations

from invoke.collection import Collection

from fabfile.tasks import collection

#: Settings under ``queue.`` (fabric.yaml, ``FABRIC_QUEUE_*`` environment variables, ``-f FILE``).
#: user, app_dir, venv, program, log_file: None = the inventory's ``ictq_worker_*`` variables,
#: else the deploy role's defaults (roles/ictq_worker/defaults/main.yml). programs: the Supervisor
#: programs to act on (a list or "a,b"); None = the names of the inventory's ictq_worker_programs,
#: else ``program`` alone.
DEFAULTS = {
    "inventory": None,
    "group": "workers",
    "user": None,
    "app_dir": None,
    "venv": None,
    "program": None,
    "programs": None,
    "log_file": None,
    "parallel": 10,
    "connect_timeout": 10,
    "command_timeout": 300,
    "host_key_checking": True,
}

ns = Collection()
ns.add_collection(collection())
ns.configure({"queue": DEFAULTS})
