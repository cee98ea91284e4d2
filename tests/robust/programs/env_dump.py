"""Writes its environment as JSON to the file named by argv[1]."""

import json
import os
import sys

with open(sys.argv[1], "w") as f:
    json.dump(dict(os.environ), f)
