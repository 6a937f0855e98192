"""Lower the CPU priority of one thread: background work in a web worker (key derivation for
logins, the preloader's warming of a new snapshot) takes what the requests leave.

On Linux each thread is its own scheduling entity, so ``setpriority`` on the thread's native id
changes that thread alone. Raising a nice value needs no privilege; it cannot be lowered again
without one, so only threads that do nothing else are lowered.
"""

from __future__ import annotations

import os
import threading


def lower_this_thread(by: int) -> bool:
    """Make the calling thread ``by`` nicer (capped at 19); False where the OS does not allow
    it (the thread then runs at the process's priority)."""
    if by <= 0:
        return False
    try:
        tid = threading.get_native_id()
        now = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, now + by))
    except (AttributeError, OSError):
        return False
    return True
