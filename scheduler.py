#!/usr/bin/env python3
"""Compatibility wrapper: `sudo python3 scheduler.py --once` runs the TypeScript scheduler."""
import os, sys
launch = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin", "launch")
os.execv(launch, [launch, "scheduler"] + sys.argv[1:])
