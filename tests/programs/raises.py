"""Raises from a function: the error points at this file."""


def parse(text):
    return int(text)


print("about to fail")
parse("not a number")
