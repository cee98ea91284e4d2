"""Prints a line, then raises: the error screen's fixture."""


def parse(text):
    return int(text)


print("about to fail")
parse("not a number")
