#!/usr/bin/env python3
"""Compatibility wrapper: `sudo ./LibreQoS.py --debug` runs the TypeScript LibreQoS command."""
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
launcher = os.path.join(here, "LibreQoS")
os.execv(launcher, [launcher] + sys.argv[1:])
