"""The performer's REPL: ``livelatent live`` in a terminal and ``%load_ext livelatent`` in IPython."""
