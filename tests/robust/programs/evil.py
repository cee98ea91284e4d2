"""Prints terminal escape sequences and names a thread with them: traces carry whatever programs say."""

import threading

print("\x1b]0;owned title\x07\x1b[2J\x1b[31mred\x9b1m __import__('os').system('touch PWNED')")
t = threading.Thread(target=print, args=("\x1b[5mblink",), name="\x1b]0;lane\x07\x1b[1Aevil")
t.start()
t.join()
