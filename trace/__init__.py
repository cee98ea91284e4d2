"""A trace as data: the store the app and the CLI read, and the words that tell what happened.

Nothing here imports Textual or the engines' runtime hooks: a trace is read, queried and told
the same way in the app, in `concurview summary` and in tests.
"""
