"""No concurrency at all: still a one-lane trace."""
total = sum(range(1000))
print("total", total)
