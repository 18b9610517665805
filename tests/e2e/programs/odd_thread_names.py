"""Threads whose names are not strings (a test suite's mocks do this): the program must run as
it does untraced, and the report must say what the hooks wrote instead."""

import threading
from unittest import mock

done = []
thread = threading.Thread(target=lambda: done.append(1))
thread._name = mock.MagicMock()  # type: ignore[attr-defined]
thread.start()
thread.join()
assert done == [1]
print("ok")
