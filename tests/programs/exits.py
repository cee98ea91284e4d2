"""Calls sys.exit(3) while a worker thread it started is still running: python waits for it, then exits 3."""
import sys
import threading
import time


def worker():
    time.sleep(0.05)
    print("worker finished")


threading.Thread(target=worker, name="worker").start()
print("exiting with 3")
sys.exit(3)
