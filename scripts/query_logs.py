"""The seed's query script, now ``orchestrator logs``: same code, same flags."""

import sys

from orchestrator.cli.main import main

sys.exit(main(["logs", *sys.argv[1:]]))
