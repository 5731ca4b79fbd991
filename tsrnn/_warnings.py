"""Warnings reported at the user's line.

A fixed ``stacklevel`` points into tsrnn whenever the call path to the warning
changes depth (``fit`` on a Series and on arrays reach the training loop through
different helpers). Like pandas' ``find_stack_level``, :func:`warn` counts the frames
inside this package and reports the first frame outside it: the user's call, or the
scikit-learn code that made it (a ``Pipeline``, a grid search).
"""

from __future__ import annotations

import os
import sys
import warnings

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _user_stacklevel() -> int:
    level = 1  # warnings.warn's frame for stacklevel=1 is warn()'s caller
    frame = sys._getframe(2)  # the caller of warn()
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    return level + 1


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` attributed to the first frame outside tsrnn."""
    warnings.warn(message, category, stacklevel=_user_stacklevel())
