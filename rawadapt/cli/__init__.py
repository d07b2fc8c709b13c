"""The ``rawadapt`` command line (typer). Thin: parse, call the library, print.

Each command group lives in its own module with a ``register(app)`` function; ``main.py`` lists
them. Heavy imports happen inside command bodies so ``rawadapt --help`` stays fast.
"""
