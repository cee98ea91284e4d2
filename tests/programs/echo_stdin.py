"""Reads a line from stdin, prints argv and __name__, exits 3."""
import os
import sys

name = sys.stdin.readline().strip()
print(f"hello {name}", sys.argv[1:], __name__, os.path.basename(os.getcwd()))
sys.exit(3)
