#!/usr/bin/env python3
"""Compatibility wrapper: `sudo ./LibreQoS.py --debug` runs the TypeScript LibreQoS command."""
import os, sys
launch = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin", "launch")
os.execv(launch, [launch, "LibreQoS"] + sys.argv[1:])
