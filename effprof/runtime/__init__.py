"""What every stage that builds or runs a torch module needs, below them all (ARCHITECTURE.md § Code map):

    guard.py     user code runs inside a guard: torch's process-wide settings restored, an exit made an exception
    counting.py  the count-only context: whether this build counts on fake tensors, the assumptions it takes where
                 shapes depend on data, and moving a module onto fake tensors
    storage.py   a tensor's storage identity (state bytes and live-memory tracking count each storage once)
"""
