"""`python -m vace_server.demo`: see `vace_server.demo.run`."""

from __future__ import annotations

import sys

from vace_server.demo.run import main

sys.exit(main(sys.argv[1:]))
