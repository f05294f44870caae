"""Running a CLI verb as a Ray job's driver (`jobs/*.py`).

`ray job submit` starts the driver with RAY_ADDRESS set, and every verb calls
`start_ray`, which joins that cluster instead of starting a local Ray; so a job
entrypoint is the verb itself with the job's arguments, and `jobs/x.py --help` is
`ocsf-ray x --help`.
"""

from __future__ import annotations

import sys


def run_verb(verb: str) -> None:
    import typer.main

    from ocsf_ray.cli import app

    command = typer.main.get_command(app).commands[verb]
    command.main(args=sys.argv[1:], prog_name=f"python {sys.argv[0]}")
