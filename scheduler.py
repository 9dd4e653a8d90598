#!/usr/bin/env python3
"""Compatibility wrapper: `sudo python3 scheduler.py --once` runs the TypeScript scheduler."""
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
launcher = os.path.join(here, "scheduler")
os.execv(launcher, [launcher] + sys.argv[1:])
