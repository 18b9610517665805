"""Code that runs inside the target process, before user code.

Everything under this package must use the standard library only: it is imported into whatever
interpreter runs the user's program, where threadscope's own dependencies may not be installed.
"""

from __future__ import annotations
