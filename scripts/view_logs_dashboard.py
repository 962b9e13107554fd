#!/usr/bin/env python3
"""The live log dashboard; the same code as ``orchestrator dashboard`` (see --help)."""

import sys

from orchestrator.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["dashboard", *sys.argv[1:]]))
